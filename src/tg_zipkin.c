#include "tg_zipkin.h"
