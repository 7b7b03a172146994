#include "unit.h"

void tg_test_add_span(void)
{
    TG_SUITE("span");
}
