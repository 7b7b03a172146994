#include "tg_shipper.h"
