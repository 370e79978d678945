/* store.c — placeholder until implemented. */
#include "store/store.h"
typedef int store_placeholder_;
