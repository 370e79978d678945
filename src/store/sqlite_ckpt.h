/* SPDX-License-Identifier: MIT */
/*
 * sqlite_ckpt — WAL checkpoints on a background thread.
 *
 * With synchronous=FULL every commit fsyncs the WAL; SQLite's automatic
 * checkpoint would then, every 1000 pages, also copy pages into the database
 * and fsync it — inside the committing writer's transaction, which more than
 * doubles the cost of that commit (measured: 3.2 ms vs 1.45 ms per commit on
 * this machine's disk). The store's writer connection therefore disables the
 * automatic checkpoint, and this thread, on its own connection, runs PASSIVE
 * checkpoints (which never block writers) every 50 ms, and syncs the
 * database file after each one that copied pages, so the disk gets that data
 * in small pieces rather than all at once behind the writer's next fsync.
 * Once a pass finds everything copied and nothing new, it waits a second
 * instead, and the writer's next commit wakes it (an idle serve's thread
 * woke 20 times a second, now once).
 *
 * Under continuous load those never find the WAL fully copied (the writer
 * appends while they run), so SQLite never starts the WAL file over and it
 * grows. Forcing that with a RESTART checkpoint from this thread stalled the
 * writer: RESTART holds the write lock while it waits for readers, and the
 * writer's own retries kept looking like readers (stalls of 60 ms to over a
 * second, measured). Instead, once the WAL is large this thread asks the
 * writer to catch up: right after its next commit the writer runs a PASSIVE
 * checkpoint on its own connection (from SQLite's WAL hook), which copies
 * the few frames appended since, and its next transaction starts the WAL
 * over by itself. Nothing waits on a lock: if anything is in the way, the
 * writer tries again after a later commit.
 */
#ifndef TH_SQLITE_CKPT_H
#define TH_SQLITE_CKPT_H

#include <sqlite3.h>

#include "util/util.h"

typedef struct sqlite_ckpt sqlite_ckpt;

#define SQLITE_CKPT_PERIOD_MS 50         /* how often new WAL frames are copied */
#define SQLITE_CKPT_CATCH_UP_FRAMES 8192 /* WAL size (pages, ~32 MiB) that asks the writer */

/* Start checkpointing the database at @path every @period_ms, asking the
 * writer to catch up once the WAL holds @catch_up_frames frames. Free with
 * sqlite_ckpt_stop(). */
int sqlite_ckpt_start(sqlite_ckpt **out, const char *path, int period_ms, int catch_up_frames,
                      th_error *err);
/* Make @db (the one connection that writes; used under the caller's lock)
 * the writer that catches up: after each of its commits, SQLite's WAL hook
 * checks one atomic flag and, when it is set, copies what is left of the WAL
 * into the database so the next transaction starts the WAL over. Replaces
 * any WAL hook of @db, SQLite's automatic checkpoint included (it is one);
 * a later `PRAGMA wal_autocheckpoint` would remove it again. */
void sqlite_ckpt_attach_writer(sqlite_ckpt *c, sqlite3 *db);
/* Run a final checkpoint, stop the thread and free. NULL-safe. */
void sqlite_ckpt_stop(sqlite_ckpt *c);

#endif
