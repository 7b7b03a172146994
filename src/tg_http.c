#include "tg_http.h"
