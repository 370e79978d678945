/* SPDX-License-Identifier: MIT */
/*
 * store_fault.h — fault injection for the store's tests (private to
 * src/store and its tests). Built in only with the meson option
 * fault_injection=true (TH_FAULT_INJECTION; `make fault`); otherwise every
 * check below is a constant false the compiler removes.
 *
 * A test arms a kind of operation: the Nth one from then on fails, and the
 * @count after it (count < 0: every one until store_fault_clear()). The
 * SQLite store counts statement preparations, steps and commits; the
 * PostgreSQL store counts queries. Thread-safe (atomic counters); the armed
 * state is this module's own and process-wide.
 *
 * Whole processes (the e2e tests of tests/fault/, `trellohook serve`) are
 * armed from the environment when their store opens:
 *   TH_STORE_FAULT=KIND          prepare, step, commit, query or finish
 *   TH_STORE_FAULT_WHILE=FILE    (optional) fail only while FILE exists
 * so a test switches the fault on and off by creating and removing a file.
 * Every operation of KIND fails while armed; a warning says so at start.
 */
#ifndef TH_STORE_FAULT_H
#define TH_STORE_FAULT_H

#include <stdbool.h>

#include "util/util.h" /* th_error */

enum store_fault {
	STORE_FAULT_PREPARE, /* SQLite: preparing a statement */
	STORE_FAULT_STEP,    /* SQLite: stepping a statement (any statement) */
	STORE_FAULT_COMMIT,  /* SQLite: COMMIT (as when the fsync of the commit fails) */
	STORE_FAULT_QUERY,   /* PostgreSQL: sending a query (BEGIN and COMMIT included) */
	STORE_FAULT_FINISH,  /* both: recording delivery outcomes (delivery_finish_many) */
	STORE_FAULT_KINDS
};

#ifdef TH_FAULT_INJECTION
/* From now on, operations @nth .. @nth + @count - 1 (1-based) of @kind fail;
 * @count < 0: every one from @nth on. Other kinds are disarmed. */
void store_fault_arm(enum store_fault kind, long nth, long count);
/* Nothing fails any more. */
void store_fault_clear(void);
/* How many operations of @kind were counted since the last arm. */
long store_fault_seen(enum store_fault kind);
/* Count one operation of @kind: true when it is to fail. Also remembers, for
 * this thread, that the last failure was injected (store_fault_take()). */
bool store_fault_hit(enum store_fault kind);
/* Was this thread's last failure an injected one? (Clears the mark.) */
bool store_fault_take(void);
/* Arm from TH_STORE_FAULT / TH_STORE_FAULT_WHILE (once per process; later
 * calls only repeat the first answer). TH_ECONFIG for an unknown kind or an
 * oversized path. */
int store_fault_from_env(th_error *err);
#else
static inline bool store_fault_hit(enum store_fault kind)
{
	(void)kind;
	return false;
}
static inline bool store_fault_take(void)
{
	return false;
}
static inline int store_fault_from_env(th_error *err)
{
	(void)err;
	return 0;
}
#endif

#endif
