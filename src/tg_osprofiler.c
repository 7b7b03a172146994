#include "tg_osprofiler.h"
