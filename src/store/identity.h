/* SPDX-License-Identifier: MIT */
/*
 * identity — facts about a store read on a connection of their own, for
 * `trellohook doctor` and the probe route of `serve` (which must agree on
 * them without a schema change): which store this is, and whether this
 * process may write to it.
 */
#ifndef TH_STORE_IDENTITY_H
#define TH_STORE_IDENTITY_H

#include <stddef.h>

#include "util/util.h"

/* The identity of the store named by @database_url into @out: "KIND:MS",
 * MS the time its first schema version was applied (schema_migrations),
 * which differs from store to store and is the same for every process using
 * one store. TH_ENOTFOUND when the store has no schema yet, TH_EUNAVAIL /
 * TH_ESTORE when it cannot be read, TH_ECONFIG for a URL it does not know.
 * Thread-safe (a connection of its own, closed before returning); a
 * PostgreSQL connection attempt gives up after 5 s. */
int store_identity(const char *database_url, char *out, size_t outsz, th_error *err);

/* Can this process write to the store? SQLite: takes the write lock
 * (BEGIN IMMEDIATE, then ROLLBACK: nothing changes). PostgreSQL: the server
 * is not a read-only standby and the role may insert into events.
 * 0, or TH_EIO / TH_EUNAVAIL / TH_ESTORE with what is wrong. Thread-safe. */
int store_check_writable(const char *database_url, th_error *err);

/* The file path of a "sqlite:PATH" or "sqlite:///PATH" URL (pointing into
 * @url; may be "" or ":memory:"), or NULL for any other URL. Pure. */
const char *store_sqlite_file(const char *url);

/* Append @url to @out without trellohook's own query parameters (pool_size,
 * statement_timeout), which libpq refuses. 0, or @out's failure code. The
 * caller wipes @out after use (the URL may hold a password). Thread-safe. */
int store_libpq_url(buf *out, const char *url);

#endif
