/* SPDX-License-Identifier: MIT */
/*
 * backup — `trellohook backup PATH`: a consistent copy of a live SQLite
 * store, made with SQLite's online backup API while `serve` keeps writing.
 * Like schema_check, it does not go through store_open() (which migrates):
 * a backup taken before an upgrade must be the store as it was.
 */
#ifndef TH_STORE_BACKUP_H
#define TH_STORE_BACKUP_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>

#include "util/util.h"

/* What one backup copied. */
typedef struct store_backup_info {
	int64_t pages;      /* database pages copied */
	int64_t bytes;      /* size of the copy */
	int64_t ms;         /* how long the copy took */
	int schema_version; /* the copy's schema version (0: no trellohook schema) */
} store_backup_info;

/* Copy the SQLite store named by @database_url to the file @dest.
 *
 * The copy is written to a temporary file beside @dest (mode 0600: the store
 * holds tokens), checked (PRAGMA quick_check), fsynced, then renamed to
 * @dest and the directory fsynced: @dest is either absent or a whole copy.
 * The copy is one snapshot of the store: it holds a read transaction on the
 * source across the steps (in WAL mode writers are not blocked by it, and
 * the copy does not start over when they commit).
 *
 * Without @force an existing @dest is refused (TH_EEXISTS); with it, @dest
 * is replaced atomically. Refused whatever @force says: @dest naming the
 * store itself or one of its -wal/-shm/-journal files, a directory, or a
 * @dest whose own -wal file exists (SQLite would replay it into the copy).
 *
 * Returns 0 and fills *@out (may be NULL); TH_ECONFIG when the URL is not a
 * SQLite file (PostgreSQL: see store_backup_pg_hint()), TH_EINVAL for a
 * @dest that is the store, TH_EEXISTS, TH_ENOTFOUND when the store file does
 * not exist, TH_EIO when @dest cannot be written, TH_ESTORE when SQLite
 * fails. Nothing is left behind on failure. Thread-safe (shares nothing). */
int store_backup(const char *database_url, const char *dest, bool force, store_backup_info *out,
                 th_error *err);

/* What one restore did. */
typedef struct store_restore_info {
	int64_t bytes;                /* size of the restored store */
	int64_t ms;                   /* how long it took */
	int schema_version;           /* the backup's schema version (the next command migrates
	                               * an older one) */
	char replaced[PATH_MAX + 48]; /* where the store it replaced is kept ("": none) */
} store_restore_info;

/* Put the backup @src (a file made by store_backup(), or any copy of a
 * trellohook SQLite store) in place of the SQLite store named by
 * @database_url.
 *
 * Refused (TH_EUNAVAIL, naming the process) while another process has the
 * store open: call it before this process opens the store (see peer.h).
 * @src is copied with SQLite's backup API into a temporary file beside the
 * store, checked (quick_check; a trellohook schema no newer than this
 * build's, else TH_EINVAL) and fsynced. The store it replaces, its WAL folded
 * in first, is kept beside it as STORE.replaced-<UTC time> (a hard link while
 * the copy is renamed over the store: the store's name never names nothing);
 * its -shm is removed, and a -wal left over goes with it, so it is never
 * replayed into the restored file. Then the directory is fsynced. Nothing is
 * changed when any step before the rename fails.
 *
 * Returns 0 and fills *@out (may be NULL); TH_ECONFIG when the URL is not a
 * SQLite file, TH_EINVAL for a @src that is the store or not a trellohook
 * store, TH_ENOTFOUND when @src does not exist, TH_EIO, TH_ESTORE.
 * Thread-safe (shares nothing). */
int store_restore(const char *database_url, const char *src, store_restore_info *out,
                  th_error *err);

/* For a PostgreSQL @database_url: append to @out the pg_dump command line
 * that backs it up to @dest (shell-quoted, the password replaced by ****,
 * trellohook's own URL parameters dropped) and return 0; TH_EINVAL when the
 * URL is not PostgreSQL. @out belongs to the caller. */
int store_backup_pg_hint(const char *database_url, const char *dest, buf *out);

/* The same for putting the dump @src back: the pg_restore command line. */
int store_restore_pg_hint(const char *database_url, const char *src, buf *out);

#endif
