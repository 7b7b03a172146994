/* mod_tomograph's request hooks: a SERVER span for each client request,
 * handed on to the app or backend that serves it, a CLIENT span for each call
 * mod_proxy makes, error-log lines as notes; finished spans go onto the
 * queue. */

#include "mod_tomograph.h"

/* Its log lines are the module's (LogLevel tomograph:...), as in mod_tomograph.c. */
APLOG_USE_MODULE(tomograph);

#include <apr_strings.h>
#include <apr_uri.h>

#include "http_protocol.h"
#include "http_request.h"

#include "tg_headers.h"
#include "tg_ids.h"
#include "tg_osprofiler.h"
#include "tg_record.h"
#include "tg_redact.h"
#include "tg_span.h"

#define ENV_TRACE_ID "TOMOGRAPH_TRACE_ID"
#define ENV_SPAN_ID "TOMOGRAPH_SPAN_ID"

/* Whether the configuration reads the ids from the environment (a log
 * format, a header...): then every request gets them, else only those whose
 * handler reads the environment (decide_trace, hand_on_span).  Two entries
 * and their hex cost a static file's request an eighth of its span. */
static int environment_named;

/* Whether a directive names one of our environment variables (LogFormat,
 * ErrorLogFormat, Header, RewriteCond, <If>...).  Case does not matter to
 * the environment's table, so it does not here. */
static int names_our_environment(const ap_directive_t *directive)
{
    for (; directive; directive = directive->next) {
        if (directive->args
            && (ap_strcasestr(directive->args, ENV_TRACE_ID)
                || ap_strcasestr(directive->args, ENV_SPAN_ID)))
            return 1;
        if (names_our_environment(directive->first_child))
            return 1;
    }
    return 0;
}

void tomograph_read_environment_readers(const ap_directive_t *conftree)
{
    environment_named = names_our_environment(conftree);
}

/* A call to a backend that mod_proxy makes for a request. */
typedef struct {
    tg_span_t *client;             /* its CLIENT span; NULL before the first */
} backend_call_t;

/* What the module keeps for a client's request, on the original
 * request_rec; internal redirects and subrequests reach it from theirs. */
typedef struct {
    tg_span_t server;
    backend_call_t call;           /* the client request's and its internal redirects' */
    const char *tracestate;        /* the trusted caller's, handed on unchanged */
    const char *first_uri;         /* r->uri when the trace began */
    int deep;                      /* X-Trace-Info goes on: see choose_deep_trace */
    int body_announced;            /* headers_in, which internal redirects share, say a
                                    * body comes (TG_HEADERS_ANNOUNCE_BODY) */
    struct connection_state *connection; /* its connection's; NULL when unsampled */
    int have_hex;                  /* the ids below are written (when first asked for) */
    char trace_hex[TG_TRACE_ID_HEX_LEN + 1];
    char span_hex[TG_SPAN_ID_HEX_LEN + 1];
} request_trace_t;

static request_rec *original_request(const request_rec *r)
{
    for (;;) {
        if (r->main)
            r = r->main;
        else if (r->prev)
            r = r->prev;
        else
            return (request_rec *)r;
    }
}

static request_trace_t *find_trace(const request_rec *r)
{
    return ap_get_module_config(original_request(r)->request_config, &tomograph_module);
}

static int tracing_enabled(const request_rec *r)
{
    return dir_conf(r)->enable != 0;
}

/* ip is the text form of addr (which may be NULL).  Its text, not its
 * family, says which an address is: a socket on [::] has IPv4 clients. */
static void set_endpoint_of(tg_endpoint_t *endpoint, const char *ip, const apr_sockaddr_t *addr,
                            apr_pool_t *pool)
{
    tg_endpoint_set_address(endpoint, ip, addr ? addr->port : 0, pool);
}

static int decide_sampled(const tg_context_t *caller, int trusted, const dir_conf_t *dconf,
                          const server_conf_t *sconf)
{
    tg_sampler_t sampler;
    sampler.rate = dconf->sample_rate >= 0 ? dconf->sample_rate : 1.0;
    /* No cap, nothing to count. */
    sampler.limit = sconf->instance->sample_limit ? &tomograph_retained->shared->sample_limit : NULL;
    sampler.limit_per_second = (uint64_t)sconf->instance->sample_limit;
    /* The coin and the clock only when the rate and the cap need them. */
    return tg_sampling_decide(&sampler, caller, trusted,
                              sampler.rate < 1.0 ? tg_random_span_id() : 0,
                              sampler.limit_per_second ? apr_time_now() : 0);
}

/* ---- the transfer: the request's body, the answer's first byte ---- */

/* A connection's, kept in its pool, so that a request's trace may point to
 * it and its filter never points into a request's pool: when the answer
 * being sent began to leave.  A connection serves one request at a time
 * (HTTP/1, where httpd logs a request before it reads the next; each
 * HTTP/2 stream has a connection of its own). */
typedef struct connection_state {
    int awaiting_first_byte;
    apr_time_t first_byte_at;
} connection_state_t;

static ap_filter_rec_t *first_byte_filter;
static ap_filter_rec_t *body_filter;

/* The connection's state, and its filter (note_first_byte) on its first
 * recorded request: a connection that carries none (most of them, at a low
 * sampling rate; mod_proxy's to its backends) pays for no filter pass.
 * Added with root, so that root's filters, which end at the connection's,
 * lead to it from now on; once a connection's, it stays. */
static connection_state_t *watched_connection(request_rec *root)
{
    conn_rec *c = root->connection;
    connection_state_t *state = ap_get_module_config(c->conn_config, &tomograph_module);
    if (!state) {
        state = apr_pcalloc(c->pool, sizeof(*state));
        ap_set_module_config(c->conn_config, &tomograph_module, state);
        ap_add_output_filter_handle(first_byte_filter, state, root, c);
    }
    return state;
}

static void await_first_byte(request_rec *root, request_trace_t *trace)
{
    connection_state_t *state = watched_connection(root);
    trace->connection = state;
    state->awaiting_first_byte = 1;
    state->first_byte_at = 0;
}

/* Stamps the first byte if bb has one, and passes bb on.  Out of line,
 * and a tail call both here and in the filter, so that the filter's pass
 * for every other brigade of the connection needs no stack frame. */
static __attribute__((noinline, cold)) apr_status_t stamp_and_pass(ap_filter_t *f,
                                                                  apr_bucket_brigade *bb)
{
    connection_state_t *state = f->ctx;
    const apr_bucket *b;
    for (b = APR_BRIGADE_FIRST(bb); b != APR_BRIGADE_SENTINEL(bb); b = APR_BUCKET_NEXT(b))
        if (!APR_BUCKET_IS_METADATA(b) && b->length != 0) {
            state->first_byte_at = apr_time_now();
            state->awaiting_first_byte = 0;
            break;
        }
    return ap_pass_brigade(f->next, bb);
}

/* A connection filter, above the network (and TLS): the first brigade with
 * a byte in it that passes, its status line, is the answer leaving.  Every
 * other brigade of the connection (about four a request) costs a load, a
 * test and the hop to the next filter. */
static apr_status_t note_first_byte(ap_filter_t *f, apr_bucket_brigade *bb)
{
    const connection_state_t *state = f->ctx;
    if (state->awaiting_first_byte)
        return stamp_and_pass(f, bb);
    return ap_pass_brigade(f->next, bb);
}

/* Counts the body as whoever serves the request reads it, just above
 * HTTP_IN (which takes the chunks apart), and notes when its end comes. */
static apr_status_t count_request_body(ap_filter_t *f, apr_bucket_brigade *bb,
                                       ap_input_mode_t mode, apr_read_type_e block,
                                       apr_off_t readbytes)
{
    tg_span_t *span = f->ctx;
    apr_status_t rv = ap_get_brigade(f->next, bb, mode, block, readbytes);
    apr_bucket *b;
    if (rv != APR_SUCCESS || mode == AP_MODE_SPECULATIVE)
        return rv;
    for (b = APR_BRIGADE_FIRST(bb); b != APR_BRIGADE_SENTINEL(bb); b = APR_BUCKET_NEXT(b)) {
        if (APR_BUCKET_IS_EOS(b)) {
            span->body_read_at = apr_time_now();
            span->transfer |= TG_TRANSFER_BODY_READ;
            ap_remove_input_filter(f);
            break;
        }
        if (b->length != (apr_size_t)-1)
            span->request_bytes += b->length;
    }
    return rv;
}

void tomograph_register_filters(void)
{
    first_byte_filter = ap_register_output_filter("TOMOGRAPH_FIRST_BYTE", note_first_byte, NULL,
                                                  AP_FTYPE_CONNECTION);
    body_filter = ap_register_input_filter("TOMOGRAPH_BODY", count_request_body, NULL,
                                           AP_FTYPE_CONTENT_SET + 5);
}

/* Whether the caller sent a valid X-Trace-Info (signed, when the server has
 * keys), whether or not the trace continues from it (TomographExtract may
 * not read it, or another header may win over it).  `caller` is what
 * tg_extract_in_order read; NULL when no header could carry a context. */
static int caller_sent_trace_info(const request_rec *root, const tg_context_t *caller,
                                  int continued, const server_conf_t *sconf)
{
    const char *info;
    tg_context_t sent;
    if (!caller)
        return 0;
    if (continued && (caller->agreeing & TG_FORMAT_BIT(TG_FORMAT_X_TRACE_INFO)))
        return 1;
    info = apr_table_get(root->headers_in, "X-Trace-Info");
    return info
           && tg_osprofiler_parse(info, apr_table_get(root->headers_in, "X-Trace-HMAC"),
                                  sconf->hmac_keys, root->pool, &sent)
                  == APR_SUCCESS;
}

/* Whether a trusted caller decided the sampling itself. */
static int caller_decided(const tg_context_t *caller, int trusted)
{
    return trusted && caller && (caller->debug || caller->sampling != TG_SAMPLING_DEFER);
}

/* Deep tracing: whether X-Trace-Info goes on to what serves the request.
 * osprofiler takes a valid one to mean "profile this", at the cost of a span
 * for every SQL statement, so it goes on as it would without the module,
 * when the caller sent one (osprofiler's own rule), and besides for
 * TomographDeepTraceRate of the requests, drawn apart from
 * TomographSampleRate; never else, or loading the module would turn
 * osprofiler on for all the traffic.  A request drawn is recorded too (a
 * deep trace needs its root) unless its caller decided otherwise; an
 * unrecorded one hands on no X-Trace-Info (tg_inject_formats). */
static void choose_deep_trace(request_trace_t *trace, const request_rec *root,
                              const tg_context_t *caller, int continued, int trusted,
                              const dir_conf_t *dconf, const server_conf_t *sconf)
{
    int drawn = dconf->deep_trace_rate > 0
                && tg_sampling_draw(dconf->deep_trace_rate, tg_random_span_id());
    trace->deep = drawn || caller_sent_trace_info(root, caller, continued, sconf);
    if (drawn && !caller_decided(caller, trusted))
        trace->server.sampled = 1;
}

/* The ids in hex, written the first time something shows them: most
 * requests (a static file) never do. */
static const request_trace_t *with_hex(request_trace_t *trace)
{
    if (!trace->have_hex) {
        tg_trace_id_to_hex(trace->server.trace_id, trace->trace_hex);
        tg_u64_to_hex(trace->server.id, trace->span_hex);
        trace->have_hex = 1;
    }
    return trace;
}

static void set_response_header(request_rec *r, request_trace_t *trace)
{
    const char *name = dir_conf(r)->response_header;
    if (name && *name)
        apr_table_setn(r->err_headers_out, name, with_hex(trace)->trace_hex);
}

/* "tracecontext b3" for a set of formats. */
static const char *formats_named(apr_pool_t *pool, tg_format_set_t formats)
{
    const char *names = NULL;
    tg_format_t format;
    for (format = TG_FORMAT_TRACECONTEXT; format <= TG_FORMAT_X_TRACE_INFO; format++)
        if (formats & TG_FORMAT_BIT(format))
            names = names ? apr_pstrcat(pool, names, " ", tg_format_name(format), NULL)
                          : tg_format_name(format);
    return names;
}

/* Opens the trace of root, r's client request (see ensure_trace); out of
 * line, so that the hooks that find the trace made pay for none of it. */
static __attribute__((noinline)) request_trace_t *start_trace(request_rec *r, request_rec *root)
{
    const server_conf_t *sconf = server_conf(root->server);
    const dir_conf_t *dconf = dir_conf(r);
    int trusted = dconf->trust_incoming != 0;
    request_trace_t *trace;
    tg_context_t caller;
    tg_span_t *span;
    unsigned headers;
    int looked, continued;

    /* tg_span_init fills the span, the larger part. */
    trace = apr_palloc(root->pool, sizeof(*trace));
    trace->call.client = NULL;
    trace->tracestate = NULL;
    trace->have_hex = 0;
    span = &trace->server;
    /* Most requests carry no trace header and no body: one look at the
     * names first. */
    headers = tg_headers_survey(root->headers_in);
    looked = (headers & TG_HEADERS_MAY_CARRY_CONTEXT) != 0;
    trace->body_announced = (headers & TG_HEADERS_ANNOUNCE_BODY) != 0;
    continued = looked
                && tg_extract_in_order(tg_header_table_get, root->headers_in, sconf->extract_order,
                                       sconf->hmac_keys, root->pool, &caller)
                       == APR_SUCCESS;
    /* Named after its request; r's strings live as long as the span. */
    tg_span_init(span, root->pool, TG_SPAN_SERVER, NULL, continued && trusted ? &caller : NULL,
                 root->request_time);
    span->method = root->method;
    span->path = root->parsed_uri.path ? root->parsed_uri.path : root->uri;
    if (continued && trusted) {
        if (dconf->b3_join == 1
            && (caller.format == TG_FORMAT_B3 || caller.format == TG_FORMAT_B3_MULTI)) {
            span->id = caller.span_id;
            span->parent_id = caller.parent_id;
            span->shared = 1;
        }
        trace->tracestate = caller.tracestate;
        if (caller.agreeing & (caller.agreeing - 1))
            tg_span_tag(span, "tomograph.formats", formats_named(root->pool, caller.agreeing));
    }
    else if (continued) {
        char hex[TG_TRACE_ID_HEX_LEN + 1];
        tg_trace_id_to_hex(caller.trace_id, hex);
        tg_span_tag(span, "tomograph.untrusted.trace_id", hex);
        tg_u64_to_hex(caller.span_id, hex);
        tg_span_tag(span, "tomograph.untrusted.span_id", hex);
    }
    span->sampled = decide_sampled(looked ? &caller : NULL, trusted, dconf, sconf);
    choose_deep_trace(trace, root, looked ? &caller : NULL, continued, trusted, dconf, sconf);
    trace->connection = NULL;
    if (span->sampled)
        await_first_byte(root, trace);
    set_endpoint_of(&span->local, root->connection->local_ip, root->connection->local_addr,
                    span->pool);
    set_endpoint_of(&span->remote, root->useragent_ip, root->useragent_addr, span->pool);
    trace->first_uri = root->uri;
    ap_set_module_config(root->request_config, &tomograph_module, trace);
    return trace;
}

/* The trace of r's client request, made the first time it is asked for,
 * once per-directory settings are known (header_parser at the latest; a
 * request refused earlier gets its span when it is logged).  Every hook
 * asks: the lookup stays small, the making apart. */
static request_trace_t *ensure_trace(request_rec *r)
{
    request_rec *root = original_request(r);
    request_trace_t *trace = ap_get_module_config(root->request_config, &tomograph_module);
    if (trace || !tomograph_retained)
        return trace;
    return start_trace(r, root);
}

static void annotate_uri(request_rec *r, const char *what)
{
    request_trace_t *trace = ensure_trace(r);
    if (trace)
        tg_span_annotate(&trace->server, apr_time_now(), apr_pstrcat(r->pool, what, " ", r->uri, NULL));
}

/* The trace's ids in r's environment, by `put`: apr_table_addn where r's
 * environment cannot have them yet, which spares a search. */
static void give_ids_to_environment(request_rec *r, request_trace_t *trace,
                                    void (*put)(apr_table_t *, const char *, const char *))
{
    put(r->subprocess_env, ENV_TRACE_ID, with_hex(trace)->trace_hex);
    put(r->subprocess_env, ENV_SPAN_ID, trace->span_hex);
}

/* Runs for the client's request and for each internal redirect (httpd
 * runs header_parser for no subrequest), once per-directory settings are
 * known.  Gives the trace's ids to the logs (%{TOMOGRAPH_TRACE_ID}e) when
 * the configuration reads them, and the client its response header. */
int decide_trace(request_rec *r)
{
    request_trace_t *trace;
    if (r->prev)
        annotate_uri(r, "internal redirect to");
    trace = ensure_trace(r);
    if (!trace || !tracing_enabled(r))
        return DECLINED;
    /* Set again after each internal redirect, which renames them REDIRECT_*:
     * this request's environment never has them yet. */
    if (environment_named)
        give_ids_to_environment(r, trace, apr_table_addn);
    set_response_header(r, trace);
    /* On this request_rec: an internal redirect's starts over from the
     * connection's input filters. */
    if (trace->body_announced && trace->server.sampled
        && !(trace->server.transfer & TG_TRANSFER_BODY_READ)) {
        trace->server.transfer |= TG_TRANSFER_REQUEST_BYTES;
        ap_add_input_filter_handle(body_filter, &trace->server, r, r->connection);
    }
    return DECLINED;
}

static const char *signing_key(const request_rec *r)
{
    const apr_array_header_t *keys = server_conf(r->server)->hmac_keys;
    return keys ? APR_ARRAY_IDX(keys, 0, const char *) : NULL;
}

static void hand_on_context(request_rec *r, const request_trace_t *trace, const tg_span_t *span)
{
    const dir_conf_t *dconf = dir_conf(r);
    tg_format_set_t formats = dconf->propagate ? dconf->propagate : TG_FORMATS_PROPAGATE_DEFAULT;
    tg_context_t ctx;
    tg_span_context(span, &ctx);
    ctx.tracestate = trace->tracestate;
    if (!trace->deep)
        formats &= ~TG_FORMAT_BIT(TG_FORMAT_X_TRACE_INFO);
    tg_inject_into_table(r->headers_in, &ctx, formats, signing_key(r), r->pool);
}

/* Whether what serves r reads the trace from its request headers: an app
 * (mod_wsgi, CGI...) or a backend does, the static file handler does not, and
 * writing the headers costs more than all the rest of a span.  With no
 * handler configured, ap_invoke_handler names r's content type (text/html):
 * the file is sent as it is; content types named application/x-httpd-* are
 * the old way to configure one (PHP). */
static int handler_reads_context(const request_rec *r)
{
    const char *handler = r->handler;
    if (r->proxyreq)
        return 1;
    if (!handler)
        return 0;
    /* A content type: the common case, settled by its first letter.  With no
     * parameters, ap_invoke_handler hands on r's content type itself. */
    if (handler == r->content_type || ap_strchr_c(handler, '/'))
        return handler[0] == 'a' && strncmp(handler, "application/x-httpd-", 20) == 0;
    return handler[0] != 'd' || strcmp(handler, "default-handler") != 0;
}

/* Whether mod_cgi or mod_cgid runs r: they serve these two handler names
 * (a ScriptAlias, AddHandler cgi-script, an Action's redirect), compared as
 * they compare them. */
static int runs_cgi(const request_rec *r)
{
    const char *handler = r->handler;
    if (!handler)
        return 0;
    if (handler[0] == 'c')
        return strcmp(handler, "cgi-script") == 0;
    return handler[0] == 'a' && strcmp(handler, "application/x-httpd-cgi") == 0;
}

/* Runs first among handlers, when what serves r is known for sure.  Hands
 * the server span on in the headers to the app that reads them (a call to a
 * backend carries its CLIENT span instead: start_backend_call), and notes
 * what serves r when it is not what was asked for: a subrequest that is run
 * (not a mere lookup: mod_wsgi looks one up for PATH_TRANSLATED on every
 * request), or the file DirectoryIndex put in place without a redirect
 * request.  Gives a CGI the shared segment's locator. */
int hand_on_span(request_rec *r)
{
    request_trace_t *trace;
    /* A CGI is exec'd with an environment made from r's alone: there its
     * libtomograph finds the segment, as a forked app finds it in its
     * process's, whether or not the module traces r.  Only a CGI's: other
     * handlers hand r's environment on to a backend (mod_proxy_fcgi) or to
     * an app (mod_wsgi) that has the process's. */
    if (tomograph_retained && runs_cgi(r))
        apr_table_setn(r->subprocess_env, TG_SEGMENT_ENV, tomograph_retained->locator);
    trace = ensure_trace(r);
    if (!trace || !tracing_enabled(r))
        return DECLINED;
    if (r->main)
        annotate_uri(r, "subrequest");
    else if (!r->prev && r->uri != trace->first_uri && strcmp(r->uri, trace->first_uri) != 0)
        annotate_uri(r, "internal redirect to");
    if (handler_reads_context(r)) {
        if (!r->proxyreq)
            hand_on_context(r, trace, &trace->server);
        /* Only a subrequest's environment may hold them already: it is a copy
         * of its parent's.  An internal redirect's renames them REDIRECT_*. */
        if (!environment_named)
            give_ids_to_environment(r, trace, r->main ? apr_table_setn : apr_table_addn);
    }
    return DECLINED;
}

void insert_error_filter(request_rec *r)
{
    request_trace_t *trace = ensure_trace(r);
    if (trace)
        set_response_header(r, trace);
}

static const char *service_name(const request_rec *r)
{
    const char *service = dir_conf(r)->service;
    return service ? service : server_conf(r->server)->default_service;
}

static void mark_error(tg_span_t *span, const char *reason)
{
    span->error = 1;
    tg_span_tag(span, "error", reason);
}

static void finish_span(tg_span_t *span, const request_rec *r)
{
    span->local.service_name = service_name(r);
    tg_span_finish(span, apr_time_now());
    if (span->sampled && tracing_enabled(r))
        tg_segment_enqueue(tomograph_retained->shared, span);
}

static const char *redact(request_rec *r, const char *text);

/* ---- mod_proxy: a CLIENT span for each call to a backend ---- */

/* url without the Unix socket that mod_proxy may reach the backend by
 * ("unix:/run/app.sock|uwsgi://app/"), should it still be there. */
static const char *without_socket(const char *url)
{
    const char *bar = ap_strchr_c(url, '|');
    return ap_cstr_casecmpn(url, "unix:", 5) == 0 && bar ? bar + 1 : url;
}

/* Where r's call to a backend is kept: a subrequest's on the subrequest
 * (mod_include may run one from the answer of its parent's call, still
 * streaming), the others' in the trace.  A subrequest has no trace of its
 * own: the module's slot in its request_config is free. */
static backend_call_t *call_of(request_rec *r, request_trace_t *trace)
{
    backend_call_t *call;
    if (!r->main)
        return &trace->call;
    call = ap_get_module_config(r->request_config, &tomograph_module);
    if (!call) {
        call = apr_pcalloc(r->pool, sizeof(*call));
        ap_set_module_config(r->request_config, &tomograph_module, call);
    }
    return call;
}

/* A CLIENT span for r's call to the backend at url, its context in r's
 * headers, from which every proxy module builds its call (mod_proxy_http
 * copies them after this).  A call still open is one that a balancer gave
 * up on. */
static void open_client_span(request_rec *r, request_trace_t *trace, backend_call_t *call,
                             const char *url)
{
    apr_uri_t uri;
    tg_context_t parent;
    tg_span_t *client;

    if (call->client && !call->client->finished) {
        /* A balancer fails over: the last try ended without an answer. */
        mark_error(call->client, "retried on another backend");
        finish_span(call->client, r);
    }
    if (apr_uri_parse(r->pool, without_socket(url), &uri) != APR_SUCCESS)
        memset(&uri, 0, sizeof(uri));
    tg_span_context(&trace->server, &parent);
    /* In the client request's pool, its strings copied there: r may be a
     * subrequest, gone before the end. */
    client = tg_span_start(original_request(r)->pool, TG_SPAN_CLIENT, NULL, &parent, apr_time_now());
    client->sampled = trace->server.sampled;
    client->local = trace->server.local;
    tg_span_tag(client, TG_TAG_HTTP_METHOD, r->method);
    tg_span_tag(client, TG_TAG_HTTP_PATH, uri.path ? uri.path : "/");
    if (uri.hostname) {
        int ipv6 = ap_strchr_c(uri.hostname, ':') != NULL;
        /* No port where the scheme has none by default (a uwsgi socket's name);
         * an IPv6 address in brackets, as in the URL. */
        apr_port_t port = uri.port ? uri.port : apr_uri_port_of_scheme(uri.scheme);
        tg_span_tag(client, "http.url",
                    apr_pstrcat(r->pool, uri.scheme ? uri.scheme : "http", "://",
                                ipv6 ? "[" : "", uri.hostname, ipv6 ? "]" : "",
                                port ? apr_psprintf(r->pool, ":%u", (unsigned)port) : "",
                                uri.path ? uri.path : "/", NULL));
        if (apr_isdigit(*uri.hostname) || ipv6)
            tg_endpoint_set_address(&client->remote, uri.hostname, uri.port, client->pool);
        else
            tg_span_tag(client, "peer.hostname", uri.hostname);
    }
    hand_on_context(r, trace, client);
    call->client = client;
}

/* mod_proxy runs its scheme handlers once per attempt at a call, url being
 * the backend that the balancer (if any) chose for it: each attempt is a
 * call of its own.  First among them, to decline. */
int start_backend_call(request_rec *r, proxy_worker *worker, proxy_server_conf *conf,
                       char *url, const char *proxyname, apr_port_t proxyport)
{
    request_trace_t *trace = ensure_trace(r);
    if (trace && tracing_enabled(r))
        open_client_span(r, trace, call_of(r, trace), url);
    return DECLINED;
}

int finish_client_span(int *status, request_rec *r)
{
    request_trace_t *trace = find_trace(r);
    backend_call_t *call = trace ? call_of(r, trace) : NULL;
    tg_span_t *client = call ? call->client : NULL;
    const char *backend_status;

    if (!client || client->finished)
        return DECLINED;
    /* mod_proxy_http notes the backend's status; the others pass it on as r's. */
    backend_status = apr_table_get(r->notes, "proxy-status");
    if (!backend_status && *status == OK)
        backend_status = apr_itoa(r->pool, r->status);
    if (backend_status)
        tg_span_tag(client, TG_TAG_HTTP_STATUS, backend_status);
    if (*status != OK && *status != DONE) {
        /* mod_proxy leaves error-notes for some failures only; a refused or
         * timed-out connection gets none, and no backend status either. */
        const char *reason = apr_table_get(r->notes, "error-notes");
        const char *status_line = ap_get_status_line(*status);
        mark_error(client, reason ? redact(r, reason)
                           : backend_status ? status_line
                           : apr_pstrcat(r->pool, "no answer from the backend: ", status_line,
                                         NULL));
    }
    else if (backend_status && atoi(backend_status) >= 500) {
        mark_error(client, backend_status);
    }
    finish_span(client, r);
    return DECLINED;
}

/* ---- the end of the request ---- */

/* Whether r is an HTTP/1.1 request that switched its connection to a
 * protocol that answers r again in a request of its own: an Upgrade to h2c
 * is served as the first stream of the HTTP/2 connection, which gets its
 * span like any stream, while r ends (101) only when that connection does.
 * A WebSocket's 101 leaves the connection on HTTP/1.1: r is the request. */
static int answered_anew_by_new_protocol(const request_rec *r)
{
    return r->status == HTTP_SWITCHING_PROTOCOLS
           && strcmp(ap_get_protocol(r->connection), AP_PROTOCOL_HTTP1) != 0;
}

/* The answer's first byte, when it left, and the bytes of its body
 * (r->bytes_sent counts them before any chunking); the request's body was
 * counted as it was read (count_request_body). */
static void close_transfer(request_trace_t *trace, const request_rec *last)
{
    tg_span_t *span = &trace->server;
    connection_state_t *state = trace->connection;
    if (!state->awaiting_first_byte && state->first_byte_at) {
        span->first_byte_at = state->first_byte_at;
        span->transfer |= TG_TRANSFER_FIRST_BYTE;
    }
    state->awaiting_first_byte = 0;
    span->response_bytes = (uint64_t)last->bytes_sent;
    span->transfer |= TG_TRANSFER_RESPONSE_BYTES;
}

int finish_server_span(request_rec *r)
{
    const request_rec *last;
    request_trace_t *trace;
    tg_span_t *span;

    r = original_request(r);
    for (last = r; last->next; last = last->next)
        ;
    /* A request refused before header_parser gets its span here. */
    trace = ensure_trace((request_rec *)last);
    if (!trace || trace->server.finished)
        return DECLINED;
    span = &trace->server;
    if (answered_anew_by_new_protocol(last)) {
        span->finished = 1;
        return DECLINED;
    }
    if (trace->call.client && !trace->call.client->finished) {
        /* mod_proxy runs request_status after every call it makes (a
         * subrequest's call ends with the subrequest), but a module that
         * runs a scheme handler itself need not: its call still goes out. */
        mark_error(trace->call.client, "no answer from the backend");
        finish_span(trace->call.client, last);
    }
    span->status_code = last->status;
    /* Refused at its request line (414, a malformed one): no method to name
     * it by, and a blank name is no metric anyone finds. */
    if (!span->method) {
        char *name = apr_pstrdup(r->pool, ap_get_status_line(last->status));
        ap_str_tolower(name);
        span->name = name;
    }
    if (last->status >= 500)
        mark_error(span, apr_itoa(r->pool, last->status));
    if (span->sampled)
        close_transfer(trace, last);
    finish_span(span, last);
    return DECLINED;
}

/* ---- error-log lines as notes ---- */

typedef struct {
    apr_array_header_t *secrets;
    apr_pool_t *pool;
} secret_sink_t;

static int collect_secret(void *data, const char *name, const char *value)
{
    secret_sink_t *sink = data;
    tg_redact_add_header_secret(sink->secrets, sink->pool, value);
    return 1;
}

/* text without the credentials the request carries or its response sets,
 * nor the values of the query parameters TomographRedact names.  Looked up
 * at each call, so that a cookie set late is known too (a span takes few
 * notes). */
static const char *redact(request_rec *r, const char *text)
{
    secret_sink_t sink;
    sink.pool = r->pool;
    sink.secrets = apr_array_make(r->pool, 4, sizeof(const char *));
    apr_table_do(collect_secret, &sink, r->headers_in, "Authorization", "Cookie",
                 "X-Auth-Token", "X-Subject-Token", NULL);
    apr_table_do(collect_secret, &sink, r->headers_out, "Set-Cookie", NULL);
    apr_table_do(collect_secret, &sink, r->err_headers_out, "Set-Cookie", NULL);
    return tg_redact(r->pool, text, server_conf(r->server)->redact, sink.secrets);
}

/* The seed's "handler for ERROR-level logging": a line the request writes
 * at level error or worse becomes a note on its span. */
void note_error_log(const ap_errorlog_info *info, const char *message)
{
    static _Thread_local int noting;
    request_trace_t *trace;
    request_rec *r;

    if (noting || !info->r || info->level < 0 || info->level > APLOG_ERR || !tomograph_retained)
        return;
    r = (request_rec *)info->r;
    trace = find_trace(r);
    if (!trace || trace->server.finished || !trace->server.sampled
        || (trace->server.annotations
            && trace->server.annotations->nelts >= TG_SPAN_MAX_NOTES_BETWEEN)) {
        if (trace)
            trace->server.dropped++;
        return;
    }
    noting = 1; /* anything logged from here on must not come back in */
    tg_span_annotate(&trace->server, apr_time_now(),
                     redact(r, apr_pstrcat(r->pool, "error: ", message, NULL)));
    noting = 0;
}
