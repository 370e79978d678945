/* types.c — placeholder until implemented. */
#include "model/model.h"
typedef int types_placeholder_;
