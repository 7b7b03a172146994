/* The process: fork, flush, the sampling rate of the environment. */
#include <apr_general.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lib_tests.h"

/* What a forked child checks, as its exit status: 0 when all held. */
static int child_checks(const char *parents_token)
{
    char token[TOMOGRAPH_TOKEN_SIZE];
    int failed = 0;
    failed |= (tomograph_depth() != 0) << 0;
    failed |= (tomograph_stop("parent's") != TOMOGRAPH_ENOSPAN) << 1;
    failed |= (tomograph_start("s", "child's", NULL, 0, NULL) != TOMOGRAPH_OK) << 2;
    tomograph_token(token, sizeof(token));
    /* Its own trace: not the parent's span's. */
    failed |= (strncmp(token, parents_token, 36) == 0) << 3;
    failed |= (tomograph_stop("child's") != TOMOGRAPH_OK) << 4;
    failed |= (shipped_count() != 1 || shipped(0)->parent_id != 0) << 5;
    return failed;
}

static void test_forked_child_starts_with_an_empty_stack(void)
{
    char token[TOMOGRAPH_TOKEN_SIZE];
    int status = -1;
    pid_t child;
    tomograph_start("s", "parent's", NULL, 0, NULL);
    tomograph_start("s", "inner", NULL, 0, NULL);
    tomograph_token(token, sizeof(token));
    child = fork();
    CU_ASSERT_FATAL(child >= 0);
    if (child == 0)
        _exit(child_checks(token));
    CU_ASSERT_EQUAL(waitpid(child, &status, 0), child);
    CU_ASSERT(WIFEXITED(status));
    CU_ASSERT_EQUAL(WEXITSTATUS(status), 0);
    /* The parent's spans are still its own. */
    CU_ASSERT_EQUAL(tomograph_depth(), 2);
    CU_ASSERT_EQUAL(tomograph_stop("inner"), TOMOGRAPH_OK);
    CU_ASSERT_EQUAL(tomograph_stop("parent's"), TOMOGRAPH_OK);
    CU_ASSERT_EQUAL(shipped_count(), 2);
}

static void test_flush_says_whether_everything_went(void)
{
    CU_ASSERT_EQUAL(tomograph_flush(100), TOMOGRAPH_OK);
    recording_sink_set_flushed(0);
    CU_ASSERT_EQUAL(tomograph_flush(0), TOMOGRAPH_ETIMEDOUT);
    CU_ASSERT_EQUAL(tomograph_flush(-1), TOMOGRAPH_EINVAL);
}

#define ROOT_SPANS 100

/* In a process of its own (the settings are read once a process), as
 * SAMPLING_CHILD: how many of ROOT_SPANS new traces are shipped, or more
 * than ROOT_SPANS when a continued sampled span is not. */
int sampling_child(void)
{
    int i, roots;
    apr_initialize();
    recording_sink_reset();
    for (i = 0; i < ROOT_SPANS; i++) {
        tomograph_start("s", "root", NULL, 0, NULL);
        tomograph_stop("root");
    }
    roots = shipped_count();
    tomograph_start("s", "continued", NULL, 0, "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
    tomograph_stop("continued");
    return shipped_count() == roots + 1 ? roots : ROOT_SPANS + 1;
}

static int roots_shipped_at(const char *rate)
{
    char self[PATH_MAX];
    int status = -1;
    /* This program's path, read before: under valgrind, /proc/self/exe
     * itself is valgrind. */
    ssize_t len = readlink("/proc/self/exe", self, sizeof(self) - 1);
    pid_t child;
    CU_ASSERT_FATAL(len > 0);
    self[len] = '\0';
    child = fork();
    CU_ASSERT_FATAL(child >= 0);
    if (child == 0) {
        setenv("TOMOGRAPH_SAMPLE_RATE", rate, 1);
        execl(self, "tomograph_tests", SAMPLING_CHILD, (char *)NULL);
        _exit(127);
    }
    waitpid(child, &status, 0);
    CU_ASSERT_FATAL(WIFEXITED(status));
    return WEXITSTATUS(status);
}

/* New traces at the rate; continued ones as their parent says. */
static void test_sample_rate_of_the_environment(void)
{
    int half = roots_shipped_at("0.5");
    CU_ASSERT_EQUAL(roots_shipped_at("0"), 0);
    CU_ASSERT_EQUAL(roots_shipped_at("1"), ROOT_SPANS);
    CU_ASSERT(half > ROOT_SPANS / 5 && half < ROOT_SPANS * 4 / 5);
    /* What is not a rate is ignored: everything is recorded. */
    CU_ASSERT_EQUAL(roots_shipped_at("2"), ROOT_SPANS);
    CU_ASSERT_EQUAL(roots_shipped_at("half"), ROOT_SPANS);
}

void lib_test_add_process(void)
{
    CU_pSuite suite = lib_test_suite("process");
    LIB_TEST(suite, test_forked_child_starts_with_an_empty_stack);
    LIB_TEST(suite, test_flush_says_whether_everything_went);
    LIB_TEST(suite, test_sample_rate_of_the_environment);
}
