/* SPDX-License-Identifier: MIT */
/*
 * peer — whether another process has an SQLite store open, for the commands
 * that need the file to themselves (`migrate --vacuum`, `migrate --repack`:
 * a VACUUM holds the write lock for its whole run, so a running serve would
 * answer Trello 503 meanwhile, or the VACUUM would fail on "database is
 * locked").
 *
 * It reads the locks SQLite's unix VFS keeps on the WAL index (the "-shm"
 * file, sqlite.org/walformat.html): every connection holds a shared lock on
 * its deadman-switch byte, offset 128 (after the eight WAL lock bytes at
 * 120–127), for as long as it has the index open. F_GETLK asks for a write
 * lock on that byte and is told who holds a conflicting one. Like backup and
 * schema_check it does not go through store_open().
 */
#ifndef TH_STORE_PEER_H
#define TH_STORE_PEER_H

#include <stddef.h>

#include "util/util.h"

/* Another process that has the store open. */
typedef struct store_peer {
	long pid;      /* 0: none; -1: one whose id this process cannot see (another
	                * PID namespace, e.g. a container) */
	char what[64]; /* "trellohook serve", or the process's name ("" when unknown);
	                * never its other arguments, which may hold a token */
} store_peer;

/* Into *@out, a process other than this one that has the SQLite store named
 * by @database_url open (out->pid 0: none, or not an SQLite file store, or
 * no WAL index, which every WAL-mode connection has).
 *
 * Call it before this process opens the store: closing a descriptor of the
 * "-shm" file would drop every POSIX lock this process holds on it, SQLite's
 * own included. Returns 0, or TH_EIO (with what failed) when the WAL index
 * exists but cannot be examined. Thread-safe (shares nothing). */
int store_sqlite_peer(const char *database_url, store_peer *out, th_error *err);

/* @p for people into @out: "process 4242 (trellohook serve)", "process 4242",
 * or, for a holder this process cannot see, "a process this one cannot see
 * (in another container?)". */
void store_peer_describe(const store_peer *p, char *out, size_t outsz);

#endif
