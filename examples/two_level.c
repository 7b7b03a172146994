/* A C program tracing its own work with libtomograph, outside httpd: a
 * two-level trace (a request, a step within it) and a second thread that
 * continues the step's trace from its token.
 *
 *     cc two_level.c $(pkg-config --cflags --libs tomograph) -lpthread
 *     TOMOGRAPH_SPAN_FILE=spans.json ./a.out
 *
 * leaves three lines of Zipkin JSON in spans.json, one trace: request, step
 * under it, background under step.  A failed call says why and exits 1. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <tomograph.h>

#define SERVICE "two-level"

static void must(int status, const char *call)
{
    if (status == TOMOGRAPH_OK)
        return;
    fprintf(stderr, "two_level: %s: %s\n", call, tomograph_strerror(status));
    exit(1);
}

/* The other thread's stack is empty: the token names the span to continue. */
static void *continue_in_background(void *token)
{
    must(tomograph_start(SERVICE, "background", NULL, 0, token), "tomograph_start background");
    must(tomograph_annotate("continued from a token"), "tomograph_annotate");
    must(tomograph_stop("background"), "tomograph_stop background");
    return NULL;
}

int main(void)
{
    char token[TOMOGRAPH_TOKEN_SIZE];
    pthread_t background;

    must(tomograph_start(SERVICE, "request", "127.0.0.1", 8080, NULL), "tomograph_start request");
    must(tomograph_tag("user", "demo"), "tomograph_tag");
    must(tomograph_start(SERVICE, "step", NULL, 0, NULL), "tomograph_start step");
    must(tomograph_token(token, sizeof(token)), "tomograph_token");
    if (pthread_create(&background, NULL, continue_in_background, token) != 0
        || pthread_join(background, NULL) != 0) {
        fprintf(stderr, "two_level: cannot run the background thread\n");
        return 1;
    }
    must(tomograph_stop("step"), "tomograph_stop step");
    must(tomograph_stop("request"), "tomograph_stop request");
    /* Also done at exit; here so that the spans are out before we say so. */
    must(tomograph_flush(2000), "tomograph_flush");
    printf("trace %.32s written\n", token + 3);
    return 0;
}
