/* SPDX-License-Identifier: MIT */
/*
 * store_fault.c — the counters behind store_fault.h (only in builds with
 * fault_injection=true; empty otherwise).
 */
#include "store/store_fault.h"

#ifdef TH_FAULT_INJECTION
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/log.h"

static atomic_long seen[STORE_FAULT_KINDS];
static atomic_long first[STORE_FAULT_KINDS]; /* 0: disarmed */
static atomic_long last[STORE_FAULT_KINDS];  /* -1: no end */
static _Thread_local bool injected;

/* Armed from the environment (store_fault_from_env): written once under
 * env_once before any store exists, read-only afterwards. */
static atomic_int env_kind = -1;
static char env_file[1024];
static pthread_once_t env_once = PTHREAD_ONCE_INIT;
static int env_rc;
static char env_msg[200];

static const char *const kind_names[STORE_FAULT_KINDS] = {[STORE_FAULT_PREPARE] = "prepare",
                                                          [STORE_FAULT_STEP] = "step",
                                                          [STORE_FAULT_COMMIT] = "commit",
                                                          [STORE_FAULT_QUERY] = "query",
                                                          [STORE_FAULT_FINISH] = "finish"};

static void env_arm(void)
{
	const char *k = getenv("TH_STORE_FAULT");
	const char *file = getenv("TH_STORE_FAULT_WHILE");
	if (!k || !*k)
		return;
	int kind = -1;
	for (int i = 0; i < STORE_FAULT_KINDS; i++)
		if (strcmp(k, kind_names[i]) == 0)
			kind = i;
	if (kind < 0) {
		env_rc = TH_ECONFIG;
		str_copy(env_msg, sizeof env_msg,
		         "TH_STORE_FAULT: expected prepare, step, commit, query, sync or finish");
		return;
	}
	if (file && !str_copy(env_file, sizeof env_file, file)) {
		env_rc = TH_ECONFIG;
		str_copy(env_msg, sizeof env_msg, "TH_STORE_FAULT_WHILE: path too long");
		return;
	}
	atomic_store(&env_kind, kind);
	log_warn("store", "fault injection: every %s fails%s%s (TH_STORE_FAULT)", kind_names[kind],
	         env_file[0] ? " while this file exists: " : "", env_file);
}

int store_fault_from_env(th_error *err)
{
	pthread_once(&env_once, env_arm);
	return env_rc ? th_err(err, env_rc, "%s", env_msg) : 0;
}

/* Is @kind armed from the environment and its file (if any) present now? */
static bool env_hit(enum store_fault kind)
{
	if (atomic_load(&env_kind) != (int)kind)
		return false;
	return !env_file[0] || access(env_file, F_OK) == 0;
}

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
	if (env_hit(kind)) {
		injected = true;
		return true;
	}
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
