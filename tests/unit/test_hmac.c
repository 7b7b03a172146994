#include "unit.h"

void tg_test_add_hmac(void)
{
    TG_SUITE("hmac");
}
