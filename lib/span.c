/* Spans as handles (include/tomograph.h, "spans as handles"): a tg_span_t
 * in a block of its own, its pool made when it first needs one (lib/lib.h),
 * and what the caller continues or hands on. */
#include <apr_strings.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

#include "lib.h"
#include "sink.h"
#include "tg_osprofiler.h"
#include "tg_propagation.h"
#include "tg_span.h"
#include "tg_w3c.h"

_Static_assert(TOMOGRAPH_TOKEN_SIZE == TG_TRACEPARENT_LEN + 1, "a token is a traceparent");

/* The tag a host that is no address goes in: Zipkin and OTLP endpoints
 * carry addresses only, and the seed's examples pass socket.gethostname(). */
#define HOST_NAME_TAG "host.name"
#define ERROR_TAG "error"

/* The longest service name a thread keeps lowercased, and a span holds in
 * its handle: longer ones are lowercased into the span's pool each time. */
#define CACHED_SERVICE_MAX 64

/* A span name shorter than this goes in the handle, copied as it is read;
 * longer ones into the span's pool. */
#define SHORT_NAME_MAX 64

struct tomograph_span {
    tg_span_t span;         /* span.pool NULL until the span needs one (span_pool) */
    const char *tracestate; /* W3C tracestate, carried on from the caller; NULL when none */
    /* The service name and host address, when they are the ones the thread
     * keeps (see below): copied from there, no allocation, no string call. */
    char service[CACHED_SERVICE_MAX];
    char host[INET6_ADDRSTRLEN];
    char name[SHORT_NAME_MAX]; /* the span's name when it is that short */
};

_Static_assert(sizeof(struct tomograph_span) <= TG_LIB_HANDLE_BYTES, "a handle fits its block");

/* The span's pool, made at its first need; NULL when out of memory. */
static apr_pool_t *span_pool(tomograph_span_t *handle)
{
    if (!handle->span.pool)
        handle->span.pool = tg_lib_pool_acquire();
    return handle->span.pool;
}

static void release_handle(tomograph_span_t *handle)
{
    if (handle->span.pool)
        tg_lib_pool_release(handle->span.pool);
    tg_lib_handle_release(handle);
}

static const tg_span_kind_t core_kinds[] = {
    [TOMOGRAPH_KIND_INTERNAL] = TG_SPAN_INTERNAL,
    [TOMOGRAPH_KIND_SERVER] = TG_SPAN_SERVER,
    [TOMOGRAPH_KIND_CLIENT] = TG_SPAN_CLIENT,
};

/* ASCII letters only, whatever the application's locale: a name must not
 * change with LC_CTYPE (tolower() would also cost a call per byte). */
const char *tg_lib_service_name(apr_pool_t *pool, const char *name)
{
    size_t len = strnlen(name, TG_SPAN_MAX_STRING), i;
    char *lowercase = apr_palloc(pool, len + 1);
    for (i = 0; i < len; i++)
        lowercase[i] = name[i] >= 'A' && name[i] <= 'Z' ? (char)(name[i] + ('a' - 'A')) : name[i];
    lowercase[len] = '\0';
    return lowercase;
}

/* The seed's callers pass the same service name and host to every span:
 * lowercasing the one and parsing the other are done once for the last ones
 * a thread passed. */
static _Thread_local struct {
    char given[CACHED_SERVICE_MAX]; /* as the caller wrote it; "" when none kept */
    char lowercase[CACHED_SERVICE_MAX];
} last_service;

static _Thread_local struct {
    char host[INET6_ADDRSTRLEN];
    int is_address;
    int is_ipv4; /* an address with no ':' (tg_endpoint_set_address has nothing to map) */
} last_host;

/* NULL when out of memory. */
static const char *service_name(tomograph_span_t *handle, const char *service)
{
    size_t len;
    if (!tg_lib_is_kept(service, last_service.given, sizeof(last_service.given))) {
        len = strnlen(service, sizeof(last_service.given));
        if (!span_pool(handle))
            return NULL;
        if (len == sizeof(last_service.given))
            return tg_lib_service_name(handle->span.pool, service);
        memcpy(last_service.given, service, len + 1);
        memcpy(last_service.lowercase, tg_lib_service_name(handle->span.pool, service), len + 1);
    }
    memcpy(handle->service, last_service.lowercase, sizeof(handle->service));
    return handle->service;
}

/* Whether host is an address, parsed once for the last one the thread
 * passed (then copied to the handle, as *kept). */
static int is_address(tomograph_span_t *handle, const char *host, const char **kept)
{
    struct in6_addr address;
    int verdict;
    *kept = NULL;
    if (!tg_lib_is_kept(host, last_host.host, sizeof(last_host.host))) {
        int ipv6 = strchr(host, ':') != NULL;
        verdict = inet_pton(ipv6 ? AF_INET6 : AF_INET, host, &address) == 1;
        if (strlen(host) >= sizeof(last_host.host))
            return verdict;
        strcpy(last_host.host, host);
        last_host.is_address = verdict;
        last_host.is_ipv4 = verdict && !ipv6;
    }
    memcpy(handle->host, last_host.host, sizeof(handle->host));
    *kept = handle->host;
    return last_host.is_address;
}

/* 0 when out of memory. */
static int set_local_endpoint(tomograph_span_t *handle, const char *host, int port)
{
    tg_span_t *span = &handle->span;
    const char *kept;
    if (tg_lib_given(host) && is_address(handle, host, &kept)) {
        if (kept && last_host.is_ipv4) {
            span->local.ipv4 = kept;
            span->local.port = (apr_port_t)port;
            return 1;
        }
        if (!span_pool(handle))
            return 0;
        tg_endpoint_set_address(&span->local, kept ? kept : apr_pstrdup(span->pool, host),
                                (apr_port_t)port, span->pool);
        return 1;
    }
    span->local.port = (apr_port_t)port;
    if (tg_lib_given(host)) {
        if (!span_pool(handle))
            return 0;
        tg_span_tag(span, HOST_NAME_TAG, host);
    }
    return 1;
}

/* A new trace is sampled at the configured rate; a continued one as its
 * caller says (the headers, a token or a parent are all trusted: they come
 * from the application itself, or from the module in front of it). */
static int decide_sampled(const tg_sampler_t *sampler, const tg_context_t *caller)
{
    return tg_sampling_decide(sampler, caller, 1, sampler->rate < 1.0 ? tg_random_span_id() : 0, 0);
}

/* name copied into the handle when it is short, else into the span's pool
 * (cut at TG_SPAN_MAX_STRING, as tg_span_init copies it); NULL when out of
 * memory. */
static const char *copy_name(tomograph_span_t *handle, const char *name)
{
    size_t i;
    for (i = 0; i < sizeof(handle->name); i++)
        if (!(handle->name[i] = name[i]))
            return handle->name;
    return span_pool(handle) ? apr_pstrndup(handle->span.pool, name, TG_SPAN_MAX_STRING) : NULL;
}

/* The span in handle, continuing caller (NULL, or one with no ids, for a new
 * trace), its pool `pool` (NULL: none yet).  Takes handle and pool over:
 * released when the span ends, or here when out of memory (NULL). */
static tomograph_span_t *begin_in(tomograph_span_t *handle, apr_pool_t *pool,
                                  const tg_lib_settings_t *settings, tg_span_kind_t kind,
                                  const tg_context_t *caller, const char *service,
                                  const char *name, const char *host, int port)
{
    tg_span_t *span = &handle->span;
    tg_span_init(span, pool, kind, NULL, caller, apr_time_now());
    span->sampled = decide_sampled(&settings->sampler, caller);
    handle->tracestate = NULL;
    if (!(span->name = copy_name(handle, name)))
        goto out_of_memory;
    if (caller && caller->tracestate) {
        if (!span_pool(handle))
            goto out_of_memory;
        handle->tracestate = apr_pstrdup(span->pool, caller->tracestate);
    }
    if (!tg_lib_given(service))
        span->local.service_name = settings->default_service;
    else if (!(span->local.service_name = service_name(handle, service)))
        goto out_of_memory;
    if (!set_local_endpoint(handle, host, port))
        goto out_of_memory;
    return handle;
out_of_memory:
    release_handle(handle);
    return NULL;
}

/* The context a handle hands on: the span's and the tracestate it carries. */
static void context_of(const tomograph_span_t *handle, tg_context_t *ctx)
{
    tg_span_context(&handle->span, ctx);
    ctx->tracestate = handle->tracestate;
}

int tomograph_span_begin(tomograph_span_t **span, const tomograph_span_t *parent,
                         const char *token, tomograph_kind_t kind, const char *service,
                         const char *name, const char *host, int port)
{
    const tg_lib_settings_t *settings;
    tg_context_t caller;
    tomograph_span_t *handle;
    if (!span)
        return TOMOGRAPH_EINVAL;
    *span = NULL;
    if (!tg_lib_given(name) || (unsigned)kind >= sizeof(core_kinds) / sizeof(core_kinds[0]) || port < 0
        || port > 65535)
        return TOMOGRAPH_EINVAL;
    /* A token is checked even when a parent wins over it: a caller passing
     * one that does not parse has a bug to hear of. */
    if (token && tg_w3c_parse_traceparent(token, &caller) != APR_SUCCESS)
        return TOMOGRAPH_EBADTOKEN;
    if (parent)
        context_of(parent, &caller);
    if (!(settings = tg_lib_settings()) || !(handle = tg_lib_handle_acquire()))
        return TOMOGRAPH_ENOMEM;
    *span = begin_in(handle, NULL, settings, core_kinds[kind], parent || token ? &caller : NULL,
                     service, name, host, port);
    return *span ? TOMOGRAPH_OK : TOMOGRAPH_ENOMEM;
}

int tomograph_span_begin_server(tomograph_span_t **span, const char *service, const char *name,
                                tomograph_get_header_fn *get, void *carrier)
{
    const tg_lib_settings_t *settings;
    tg_context_t caller;
    tomograph_span_t *handle;
    apr_pool_t *pool;
    if (!span)
        return TOMOGRAPH_EINVAL;
    *span = NULL;
    if (!tg_lib_given(name) || !get)
        return TOMOGRAPH_EINVAL;
    if (!(settings = tg_lib_settings()) || !(pool = tg_lib_pool_acquire()))
        return TOMOGRAPH_ENOMEM;
    if (!(handle = tg_lib_handle_acquire())) {
        tg_lib_pool_release(pool);
        return TOMOGRAPH_ENOMEM;
    }
    /* Without a usable context, caller has no ids (a new trace) but may
     * carry a bare decision (b3: 0), which the sampling honours. */
    tg_extract_in_order(get, carrier, NULL, settings->hmac_keys, pool, &caller);
    *span = begin_in(handle, pool, settings, TG_SPAN_SERVER, &caller, service, name, NULL, 0);
    return *span ? TOMOGRAPH_OK : TOMOGRAPH_ENOMEM;
}

int tomograph_span_begin_osprofiler(tomograph_span_t **span, tomograph_kind_t kind,
                                    const char *service, const char *name, const char *host,
                                    const char *base_id, const char *trace_id,
                                    const char *parent_id)
{
    const tg_lib_settings_t *settings;
    tomograph_span_t *handle;
    tg_context_t parent;
    uint64_t span_id;
    if (!span)
        return TOMOGRAPH_EINVAL;
    *span = NULL;
    if (!tg_lib_given(name) || (unsigned)kind >= sizeof(core_kinds) / sizeof(core_kinds[0]))
        return TOMOGRAPH_EINVAL;
    if (tg_osprofiler_span_ids(base_id, trace_id, parent_id, &parent, &span_id) != APR_SUCCESS)
        return TOMOGRAPH_EBADTOKEN;
    if (!(settings = tg_lib_settings()) || !(handle = tg_lib_handle_acquire()))
        return TOMOGRAPH_ENOMEM;
    /* parent's ACCEPT records it; a root (no parent span) gets new ids,
     * which osprofiler's replace. */
    *span = begin_in(handle, NULL, settings, core_kinds[kind], &parent, service, name, host, 0);
    if (!*span)
        return TOMOGRAPH_ENOMEM;
    (*span)->span.trace_id = parent.trace_id;
    (*span)->span.id = span_id;
    return TOMOGRAPH_OK;
}

int tomograph_span_annotate(tomograph_span_t *span, const char *message)
{
    if (!span || !tg_lib_given(message))
        return TOMOGRAPH_EINVAL;
    if (!span_pool(span))
        return TOMOGRAPH_ENOMEM;
    tg_span_annotate(&span->span, apr_time_now(), message);
    return TOMOGRAPH_OK;
}

int tomograph_span_tag(tomograph_span_t *span, const char *key, const char *value)
{
    if (!span || !tg_lib_given(key) || !value)
        return TOMOGRAPH_EINVAL;
    if (!span_pool(span))
        return TOMOGRAPH_ENOMEM;
    tg_span_tag(&span->span, key, value);
    return TOMOGRAPH_OK;
}

/* As the module marks a failed request: the flag, and the reason when
 * there is one (without, exporters write error=true). */
int tomograph_span_fail(tomograph_span_t *span, const char *reason)
{
    if (!span)
        return TOMOGRAPH_EINVAL;
    span->span.error = 1;
    if (tg_lib_given(reason)) {
        if (!span_pool(span))
            return TOMOGRAPH_ENOMEM;
        tg_span_tag(&span->span, ERROR_TAG, reason);
    }
    return TOMOGRAPH_OK;
}

int tomograph_span_token(const tomograph_span_t *span, char *buf, size_t size)
{
    tg_context_t ctx;
    if (!span || !buf)
        return TOMOGRAPH_EINVAL;
    if (size < TOMOGRAPH_TOKEN_SIZE)
        return TOMOGRAPH_ETOOSMALL;
    context_of(span, &ctx);
    tg_w3c_format_traceparent(&ctx, buf);
    return TOMOGRAPH_OK;
}

typedef struct {
    tomograph_set_header_fn *set;
    void *carrier;
} header_setter_t;

/* tg_inject_formats also removes the headers of the formats it does not
 * send (value NULL), which the caller's set cannot do: it only sets. */
static void set_only(void *store, const char *name, const char *value)
{
    header_setter_t *setter = store;
    if (value)
        setter->set(setter->carrier, name, value);
}

int tomograph_span_inject(const tomograph_span_t *span, tomograph_set_header_fn *set,
                          void *carrier)
{
    header_setter_t setter = { set, carrier };
    const tg_lib_settings_t *settings;
    apr_pool_t *scratch;
    tg_context_t ctx;
    if (!span || !set)
        return TOMOGRAPH_EINVAL;
    /* The values are made in a pool of their own, so that a span that
     * calls out many times does not grow with each call. */
    if (!(settings = tg_lib_settings()) || !(scratch = tg_lib_pool_acquire()))
        return TOMOGRAPH_ENOMEM;
    context_of(span, &ctx);
    tg_inject_formats(set_only, &setter, &ctx, TG_FORMATS_PROPAGATE_DEFAULT, settings->signing_key,
                      scratch);
    tg_lib_pool_release(scratch);
    return TOMOGRAPH_OK;
}

const char *tomograph_span_name(const tomograph_span_t *span)
{
    return span ? span->span.name : NULL;
}

int tomograph_span_end(tomograph_span_t *span)
{
    if (!span)
        return TOMOGRAPH_EINVAL;
    tg_span_finish(&span->span, apr_time_now());
    /* An unsampled span only handed its context on. */
    if (span->span.sampled)
        tomograph_sink_ship(&span->span);
    release_handle(span);
    return TOMOGRAPH_OK;
}

void tg_lib_span_discard(tomograph_span_t *span)
{
    release_handle(span);
}

const char *tomograph_strerror(int status)
{
    static const char *const sentences[] = {
        [TOMOGRAPH_OK] = "no error",
        [TOMOGRAPH_EINVAL] = "an argument is missing, empty or out of range",
        [TOMOGRAPH_ENOSPAN] = "no span is open on this thread",
        [TOMOGRAPH_EWRONGSPAN] = "the span named is not the one open on top of this thread's stack",
        [TOMOGRAPH_EBADTOKEN] = "the trace token does not parse (a W3C traceparent is expected)",
        [TOMOGRAPH_EDEPTH] = "too many spans are open on this thread (TOMOGRAPH_MAX_DEPTH)",
        [TOMOGRAPH_ENOMEM] = "out of memory",
        [TOMOGRAPH_ETOOSMALL] = "the buffer is too small for the result",
        [TOMOGRAPH_ETIMEDOUT] = "spans were still undelivered when the time ran out",
    };
    if (status < 0 || (size_t)status >= sizeof(sentences) / sizeof(sentences[0]))
        return "unknown status";
    return sentences[status];
}
