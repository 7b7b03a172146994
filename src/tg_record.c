#include "tg_record.h"
