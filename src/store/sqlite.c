/* sqlite.c — placeholder until implemented. */
#include "store/store.h"
typedef int sqlite_placeholder_;
