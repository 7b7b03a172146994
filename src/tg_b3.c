#include "tg_b3.h"
