#include "unit.h"

void tg_test_add_w3c(void)
{
    TG_SUITE("w3c");
}
