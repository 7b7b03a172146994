#include "tg_w3c.h"
