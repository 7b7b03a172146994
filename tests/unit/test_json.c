#include "unit.h"

void tg_test_add_json(void)
{
    TG_SUITE("json");
}
