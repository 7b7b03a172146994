#include "unit.h"

void tg_test_add_buf(void)
{
    TG_SUITE("buf");
}
