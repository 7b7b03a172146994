#include "unit.h"

void tg_test_add_queue(void)
{
    TG_SUITE("queue");
}
