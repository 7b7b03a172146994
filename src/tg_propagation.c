#include "tg_propagation.h"
