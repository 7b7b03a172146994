#include "unit.h"

void tg_test_add_http(void)
{
    TG_SUITE("http");
}
