#include "unit.h"

void tg_test_add_shipper(void)
{
    TG_SUITE("shipper");
}
