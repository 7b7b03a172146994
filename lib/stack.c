/* The seed's calls (include/tomograph.h, "a stack of spans per thread"):
 * each thread's open spans, innermost on top, over the handles of
 * lib/span.c.  A call that fails leaves the stack as it was. */
#include <stdio.h>
#include <string.h>

#include "lib.h"
#include "tg_span.h"

#define LEFT_OPEN "left open"

static _Thread_local struct {
    int depth;
    tomograph_span_t *spans[TOMOGRAPH_MAX_DEPTH];
} stack;

static tomograph_span_t *top(void)
{
    return stack.depth ? stack.spans[stack.depth - 1] : NULL;
}

static tomograph_span_t *pop(void)
{
    return stack.spans[--stack.depth];
}

/* Pushes the span a begin made (NULL when it failed). */
static int push(int status, tomograph_span_t *const *span)
{
    if (*span)
        stack.spans[stack.depth++] = *span;
    return status;
}

int tomograph_start(const char *service, const char *name, const char *host, int port,
                    const char *token)
{
    tomograph_span_t *span;
    if (stack.depth == TOMOGRAPH_MAX_DEPTH)
        return TOMOGRAPH_EDEPTH;
    return push(tomograph_span_begin(&span, top(), token, TOMOGRAPH_KIND_INTERNAL, service, name,
                                     host, port),
                &span);
}

int tomograph_start_server(const char *service, const char *name,
                           tomograph_get_header_fn *get, void *carrier)
{
    tomograph_span_t *span;
    if (stack.depth == TOMOGRAPH_MAX_DEPTH)
        return TOMOGRAPH_EDEPTH;
    return push(tomograph_span_begin_server(&span, service, name, get, carrier), &span);
}

int tomograph_annotate(const char *message)
{
    return stack.depth ? tomograph_span_annotate(top(), message) : TOMOGRAPH_ENOSPAN;
}

int tomograph_tag(const char *key, const char *value)
{
    return stack.depth ? tomograph_span_tag(top(), key, value) : TOMOGRAPH_ENOSPAN;
}

int tomograph_fail(const char *reason)
{
    return stack.depth ? tomograph_span_fail(top(), reason) : TOMOGRAPH_ENOSPAN;
}

int tomograph_stop(const char *name)
{
    if (!name)
        return TOMOGRAPH_EINVAL;
    if (!stack.depth)
        return TOMOGRAPH_ENOSPAN;
    if (!tg_lib_is_kept(name, tomograph_span_name(top()), TG_SPAN_MAX_STRING))
        return TOMOGRAPH_EWRONGSPAN;
    return tomograph_span_end(pop());
}

int tomograph_token(char *buf, size_t size)
{
    return stack.depth ? tomograph_span_token(top(), buf, size) : TOMOGRAPH_ENOSPAN;
}

int tomograph_inject(tomograph_set_header_fn *set, void *carrier)
{
    return stack.depth ? tomograph_span_inject(top(), set, carrier) : TOMOGRAPH_ENOSPAN;
}

/* Finishes the spans above depth, failed as left open, innermost first. */
static void clear_above(int depth)
{
    while (stack.depth > depth) {
        tomograph_span_t *span = pop();
        tomograph_span_fail(span, LEFT_OPEN);
        tomograph_span_end(span);
    }
}

/* The work runs whatever becomes of its span: tracing must not stop it.
 * What fn left open inside its span is finished as left open, so that the
 * span closes as the caller's block does. */
int tomograph_run(const char *service, const char *name, int (*fn)(void *arg), void *arg,
                  int *result)
{
    int depth = stack.depth, started, returned;
    if (!fn)
        return TOMOGRAPH_EINVAL;
    started = tomograph_start(service, name, NULL, 0, NULL);
    returned = fn(arg);
    if (result)
        *result = returned;
    if (started != TOMOGRAPH_OK)
        return started;
    /* fn may have stopped its own span: then there is nothing left to close. */
    if (stack.depth <= depth)
        return TOMOGRAPH_ENOSPAN;
    clear_above(depth + 1);
    if (returned) {
        char reason[sizeof("-2147483648")];
        snprintf(reason, sizeof(reason), "%d", returned);
        tomograph_fail(reason);
    }
    return tomograph_stop(name);
}

int tomograph_depth(void)
{
    return stack.depth;
}

int tomograph_clear(void)
{
    clear_above(0);
    return TOMOGRAPH_OK;
}

void tg_lib_stack_forget(void)
{
    while (stack.depth)
        tg_lib_span_discard(pop());
}
