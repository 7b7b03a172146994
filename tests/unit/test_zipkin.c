#include "unit.h"

void tg_test_add_zipkin(void)
{
    TG_SUITE("zipkin");
}
