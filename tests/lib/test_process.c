/* The process: fork, flush. */
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

void lib_test_add_process(void)
{
    CU_pSuite suite = lib_test_suite("process");
    LIB_TEST(suite, test_forked_child_starts_with_an_empty_stack);
    LIB_TEST(suite, test_flush_says_whether_everything_went);
}
