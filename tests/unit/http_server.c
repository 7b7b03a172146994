#include "http_server.h"

#include <apr_network_io.h>
#include <apr_strings.h>
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "tg_buf.h"

#define MAX_HEAD 16384 /* bytes of request line and headers */

struct tg_test_http_server_t {
    _Atomic tg_test_http_mode_t mode;
    int listen_fd;
    int wake[2]; /* a byte on wake[1] tells the thread to stop */
    pthread_t thread;
    char url[64];
    _Atomic int serving;  /* the thread has started, and waits for connections */
    _Atomic int accepts;
    _Atomic int count;    /* requests read */
    _Atomic int recorded; /* of which kept in `requests` */
    tg_test_http_request_t requests[TG_TEST_HTTP_MAX_REQUESTS];
};

/* Binds a TCP socket to 127.0.0.1 on *port, or on a port the kernel picks
 * when that is 0. */
static int bind_loopback(apr_port_t *port)
{
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
                               .sin_port = htons(*port)};
    socklen_t addr_len = sizeof(addr);
    int fd = socket(AF_INET, SOCK_STREAM, 0), on = 1;
    if (fd < 0)
        return -1;
    /* A port a test released a moment ago may be taken again at once. */
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) != 0
        || bind(fd, (struct sockaddr *)&addr, sizeof(addr)) != 0
        || getsockname(fd, (struct sockaddr *)&addr, &addr_len) != 0) {
        close(fd);
        return -1;
    }
    *port = ntohs(addr.sin_port);
    return fd;
}

/* Waits until fd is readable: 0 when told to stop instead. */
static int wait_readable(tg_test_http_server_t *server, int fd)
{
    struct pollfd fds[2] = {{.fd = fd, .events = POLLIN}, {.fd = server->wake[0], .events = POLLIN}};
    for (;;) {
        if (poll(fds, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            return 0;
        }
        if (fds[1].revents)
            return 0;
        return 1;
    }
}

static char *copy(const char *bytes, size_t len)
{
    char *out = malloc(len + 1);
    memcpy(out, bytes, len);
    out[len] = '\0';
    return out;
}

/* The Content-Length among NUL-terminated header lines (0 when absent). */
static size_t content_length(const char *head)
{
    const char *line = head;
    while (line && *line) {
        if (strncasecmp(line, "Content-Length:", 15) == 0)
            return (size_t)strtoul(line + 15, NULL, 10);
        line = strstr(line, "\r\n");
        if (line)
            line += 2;
    }
    return 0;
}

/* Splits one complete request off the front of `in` and records it.
 * 0 when `in` does not hold a complete request yet.  Only the first
 * MAX_HEAD bytes are searched, so a large body costs no rescans. */
static int take_request(tg_test_http_server_t *server, tg_buf_t *in)
{
    size_t scan = in->len < MAX_HEAD ? in->len : MAX_HEAD;
    const char *end_of_head = scan ? memmem(in->data, scan, "\r\n\r\n", 4) : NULL;
    char *head, *end_of_line;
    size_t head_len, body_len, total;
    int slot;
    if (!end_of_head)
        return 0;
    /* The request line and the header lines, each with its CRLF. */
    head_len = (size_t)(end_of_head - in->data) + 2;
    head = copy(in->data, head_len);
    end_of_line = strstr(head, "\r\n");
    body_len = content_length(end_of_line + 2);
    total = head_len + 2 + body_len;
    if (in->len < total) {
        free(head);
        return 0;
    }
    slot = atomic_load(&server->recorded);
    if (slot < TG_TEST_HTTP_MAX_REQUESTS) {
        tg_test_http_request_t *request = &server->requests[slot];
        request->request_line = copy(head, (size_t)(end_of_line - head));
        request->head = copy(end_of_line + 2, strlen(end_of_line + 2));
        request->body = copy(in->data + head_len + 2, body_len);
        request->body_len = body_len;
        atomic_store(&server->recorded, slot + 1);
    }
    atomic_fetch_add(&server->count, 1);
    free(head);
    memmove(in->data, in->data + total, in->len - total);
    tg_buf_rewind(in, in->len - total);
    return 1;
}

static int send_all(int fd, const char *bytes, size_t len)
{
    while (len > 0) {
        ssize_t sent = send(fd, bytes, len, MSG_NOSIGNAL);
        if (sent < 0 && errno == EINTR)
            continue;
        if (sent <= 0)
            return 0;
        bytes += sent;
        len -= (size_t)sent;
    }
    return 1;
}

static int answer(tg_test_http_server_t *server, int fd)
{
    static const char accepted[] = "HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n";
    static const char failed[] = "HTTP/1.1 500 Internal Server Error\r\n"
                                 "Content-Type: text/plain\r\nContent-Length: 5\r\n\r\noops\n";
    static const char rejected[] = "HTTP/1.1 400 Bad Request\r\n"
                                   "Content-Type: text/plain\r\nContent-Length: 4\r\n\r\nbad\n";
    static const char throttled[] = "HTTP/1.1 429 Too Many Requests\r\n"
                                    "Content-Type: text/plain\r\nContent-Length: 5\r\n\r\nslow\n";
    static const char redirected[] = "HTTP/1.1 301 Moved Permanently\r\n"
                                     "Location: /elsewhere\r\nContent-Length: 0\r\n\r\n";
    switch (atomic_load(&server->mode)) {
    case TG_TEST_HTTP_ACCEPT:
        return send_all(fd, accepted, sizeof(accepted) - 1);
    case TG_TEST_HTTP_FAIL:
        return send_all(fd, failed, sizeof(failed) - 1);
    case TG_TEST_HTTP_REJECT:
        return send_all(fd, rejected, sizeof(rejected) - 1);
    case TG_TEST_HTTP_THROTTLE:
        return send_all(fd, throttled, sizeof(throttled) - 1);
    case TG_TEST_HTTP_REDIRECT:
        return send_all(fd, redirected, sizeof(redirected) - 1);
    case TG_TEST_HTTP_SILENT:
        break;
    }
    return 1;
}

/* Serves requests on one connection until the client closes it. */
static void serve_connection(tg_test_http_server_t *server, int fd)
{
    char chunk[65536];
    tg_buf_t in;
    tg_buf_init(&in);
    while (wait_readable(server, fd)) {
        ssize_t got = recv(fd, chunk, sizeof(chunk), 0);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            break;
        tg_buf_write(&in, chunk, (size_t)got);
        while (take_request(server, &in))
            if (!answer(server, fd))
                goto done;
    }
done:
    tg_buf_free(&in);
}

static void *serve(void *arg)
{
    tg_test_http_server_t *server = arg;
    atomic_store(&server->serving, 1);
    while (wait_readable(server, server->listen_fd)) {
        int fd = accept(server->listen_fd, NULL, NULL);
        if (fd < 0)
            continue;
        atomic_fetch_add(&server->accepts, 1);
        serve_connection(server, fd);
        close(fd);
    }
    return NULL;
}

static apr_status_t stop(void *data)
{
    tg_test_http_server_t *server = data;
    int i, count;
    if (write(server->wake[1], "", 1) == 1)
        pthread_join(server->thread, NULL);
    /* Read once the thread is gone: it may record a request until then. */
    count = atomic_load(&server->recorded);
    close(server->listen_fd);
    close(server->wake[0]);
    close(server->wake[1]);
    for (i = 0; i < count; i++) {
        free(server->requests[i].request_line);
        free(server->requests[i].head);
        free(server->requests[i].body);
    }
    free(server);
    return APR_SUCCESS;
}

/* A server on `port` (0: any). */
static tg_test_http_server_t *start_on(apr_pool_t *pool, tg_test_http_mode_t mode,
                                       apr_port_t port)
{
    tg_test_http_server_t *server = calloc(1, sizeof(*server));
    if (!server)
        return NULL;
    server->mode = mode;
    server->listen_fd = bind_loopback(&port);
    if (server->listen_fd < 0) {
        free(server);
        return NULL;
    }
    if (listen(server->listen_fd, 8) != 0 || pipe(server->wake) != 0) {
        close(server->listen_fd);
        free(server);
        return NULL;
    }
    if (pthread_create(&server->thread, NULL, serve, server) != 0) {
        close(server->wake[0]);
        close(server->wake[1]);
        close(server->listen_fd);
        free(server);
        return NULL;
    }
    /* Until the thread has made its start (ASan's allocator takes a lock
     * for a new thread's first allocations): a test that forks meanwhile
     * would give its child that lock held, forever. */
    while (!atomic_load(&server->serving))
        sched_yield();
    apr_snprintf(server->url, sizeof(server->url), "http://127.0.0.1:%u/api/v2/spans",
                 (unsigned)port);
    apr_pool_cleanup_register(pool, server, stop, apr_pool_cleanup_null);
    return server;
}

tg_test_http_server_t *tg_test_http_start(apr_pool_t *pool, tg_test_http_mode_t mode)
{
    return start_on(pool, mode, 0);
}

tg_test_http_server_t *tg_test_http_start_at(apr_pool_t *pool, tg_test_http_mode_t mode,
                                             const char *url)
{
    unsigned port;
    if (sscanf(url, "http://127.0.0.1:%u/", &port) != 1 || port == 0 || port > 65535)
        return NULL;
    return start_on(pool, mode, (apr_port_t)port);
}

void tg_test_http_set_mode(tg_test_http_server_t *server, tg_test_http_mode_t mode)
{
    atomic_store(&server->mode, mode);
}

const char *tg_test_http_url(const tg_test_http_server_t *server)
{
    return server->url;
}

int tg_test_http_accepts(const tg_test_http_server_t *server)
{
    return atomic_load(&server->accepts);
}

int tg_test_http_request_count(const tg_test_http_server_t *server)
{
    return atomic_load(&server->count);
}

const tg_test_http_request_t *tg_test_http_request(const tg_test_http_server_t *server, int i)
{
    return i >= 0 && i < atomic_load(&server->recorded) ? &server->requests[i] : NULL;
}

const char *tg_test_http_header(const tg_test_http_request_t *request, const char *name,
                                apr_pool_t *pool)
{
    size_t name_len = strlen(name);
    const char *line = request->head;
    while (*line) {
        const char *end = strstr(line, "\r\n");
        if (!end)
            break;
        if (strncasecmp(line, name, name_len) == 0 && line[name_len] == ':') {
            const char *value = line + name_len + 1;
            while (value < end && (*value == ' ' || *value == '\t'))
                value++;
            return apr_pstrndup(pool, value, (apr_size_t)(end - value));
        }
        line = end + 2;
    }
    return NULL;
}

const char *tg_test_http_closed_url(apr_pool_t *pool)
{
    apr_port_t port = 0;
    int fd = bind_loopback(&port);
    if (fd < 0)
        return NULL;
    /* Bound but never listening, then released: a connection is refused. */
    close(fd);
    return apr_psprintf(pool, "http://127.0.0.1:%u/api/v2/spans", (unsigned)port);
}
