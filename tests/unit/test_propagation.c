#include "unit.h"

void tg_test_add_propagation(void)
{
    TG_SUITE("propagation");
}
