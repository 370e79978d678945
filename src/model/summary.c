/* summary.c — placeholder until implemented. */
#include "model/model.h"
typedef int summary_placeholder_;
