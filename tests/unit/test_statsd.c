#include "unit.h"

void tg_test_add_statsd(void)
{
    TG_SUITE("statsd");
}
