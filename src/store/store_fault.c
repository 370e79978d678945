/* SPDX-License-Identifier: MIT */
/*
 * store_fault.c — the counters behind store_fault.h (only in builds with
 * fault_injection=true; empty otherwise).
 */
#include "store/store_fault.h"

#ifdef TH_FAULT_INJECTION
#include <stdatomic.h>

static atomic_long seen[STORE_FAULT_KINDS];
static atomic_long first[STORE_FAULT_KINDS]; /* 0: disarmed */
static atomic_long last[STORE_FAULT_KINDS];  /* -1: no end */
static _Thread_local bool injected;

void store_fault_arm(enum store_fault kind, long nth, long count)
{
	store_fault_clear();
	atomic_store(&seen[kind], 0);
	atomic_store(&last[kind], count < 0 ? -1 : nth + count - 1);
	atomic_store(&first[kind], nth);
}

void store_fault_clear(void)
{
	for (int k = 0; k < STORE_FAULT_KINDS; k++) {
		atomic_store(&first[k], 0);
		atomic_store(&seen[k], 0);
	}
}

long store_fault_seen(enum store_fault kind)
{
	return atomic_load(&seen[kind]);
}

bool store_fault_hit(enum store_fault kind)
{
	long f = atomic_load(&first[kind]);
	if (f == 0)
		return false;
	long n = atomic_fetch_add(&seen[kind], 1) + 1;
	long l = atomic_load(&last[kind]);
	bool hit = n >= f && (l < 0 || n <= l);
	if (hit)
		injected = true;
	return hit;
}

bool store_fault_take(void)
{
	bool was = injected;
	injected = false;
	return was;
}
#else
typedef int store_fault_unused; /* ISO C: a translation unit is not empty */
#endif
