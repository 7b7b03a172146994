#include "unit.h"

void tg_test_add_record(void)
{
    TG_SUITE("record");
}
