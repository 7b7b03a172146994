#include "unit.h"

void tg_test_add_ids(void)
{
    TG_SUITE("ids");
}
