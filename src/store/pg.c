/* pg.c — placeholder until implemented. */
#include "store/store.h"
typedef int pg_placeholder_;
