#include "unit.h"

void tg_test_add_osprofiler(void)
{
    TG_SUITE("osprofiler");
}
