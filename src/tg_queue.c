#include "tg_queue.h"
