#include "tg_statsd.h"
