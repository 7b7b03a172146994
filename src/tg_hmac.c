#include "tg_hmac.h"
