/* event.c — placeholder until implemented. */
#include "model/model.h"
typedef int event_placeholder_;
