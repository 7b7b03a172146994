#include "tg_json.h"
