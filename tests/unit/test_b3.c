#include "unit.h"

void tg_test_add_b3(void)
{
    TG_SUITE("b3");
}
