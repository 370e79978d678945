/* SPDX-License-Identifier: MIT */
/* sqlite_ckpt.c — see sqlite_ckpt.h. */
#include <pthread.h>
#include <stdatomic.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdlib.h>
#include <time.h>

#include "store/sqlite_ckpt.h"
#include "util/log.h"
#include "util/wait.h"

#define CKPT_CONVERGE_PASSES 4  /* extra passes before the writer is asked to finish */
#define CKPT_SHORT_PASS_US 3000 /* a pass this short leaves little for the writer */
#define CKPT_WRITER_PERIODS 4   /* periods to wait for the writer before doing it here */
/* The wait once a pass found the WAL all copied and nothing new: an idle
 * server's thread then wakes once a second instead of every period (20 a
 * second), and the writer's next commit wakes it at once (after_commit). A
 * commit by another process (the CLI) waits for the second. */
#define CKPT_IDLE_MS 1000

struct sqlite_ckpt {
	atomic_bool catch_up; /* the WAL is large: the writer should finish copying it */
	atomic_bool idle;     /* waiting CKPT_IDLE_MS: a commit should wake the thread */
	int period_ms, catch_up_frames;
	sqlite3 *db;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t wake;
	bool stopping;
};

/* What one checkpoint pass saw: frames in the WAL, frames now copied into
 * the database (both 0 when unknown), and whether that is all of them. */
struct pass {
	int log, done;
	bool all_done;
};

/* One PASSIVE checkpoint on @db: copies what it can without waiting for
 * anyone (SQLITE_BUSY when another checkpoint runs). Logged (debug) unless it
 * found the WAL as @prev did: an idle server's passes, every period, would
 * fill a debug log with the same line. */
static struct pass checkpoint(sqlite3 *db, const char *who, const struct pass *prev)
{
	int log_frames = 0, done_frames = 0;
	int rc = sqlite3_wal_checkpoint_v2(db, NULL, SQLITE_CHECKPOINT_PASSIVE, &log_frames,
	                                   &done_frames);
	struct pass p = {log_frames > 0 ? log_frames : 0, done_frames > 0 ? done_frames : 0,
	                 rc == SQLITE_OK && log_frames >= 0 && done_frames == log_frames};
	bool same = prev && rc == SQLITE_OK && p.log == prev->log && p.done == prev->done;
	if (rc != SQLITE_OK && rc != SQLITE_BUSY)
		log_warn("store", "WAL checkpoint (%s) failed: %s", who, sqlite3_errmsg(db));
	else if (!same)
		log_debug("store", "WAL checkpoint (%s): %d of %d frames%s", who, done_frames,
		          log_frames, rc == SQLITE_BUSY ? " (busy)" : "");
	return p;
}

/* SQLite's WAL hook on the writer connection: runs after each commit, with
 * the write lock released (so checkpointing here is allowed). */
static int after_commit(void *ctx, sqlite3 *db, const char *schema, int wal_frames)
{
	sqlite_ckpt *c = ctx;
	(void)schema;
	(void)wal_frames;
	if (atomic_load_explicit(&c->idle, memory_order_acquire)) {
		pthread_mutex_lock(&c->lock);
		atomic_store_explicit(&c->idle, false, memory_order_release);
		pthread_cond_signal(&c->wake);
		pthread_mutex_unlock(&c->lock);
	}
	if (!atomic_load_explicit(&c->catch_up, memory_order_acquire))
		return SQLITE_OK;
	int64_t t0 = time_mono_us();
	struct pass p = checkpoint(db, "writer", NULL);
	log_debug("store", "writer caught up with the WAL (%d frames) in %lld us", p.log,
	          (long long)(time_mono_us() - t0));
	if (p.all_done)
		atomic_store_explicit(&c->catch_up, false, memory_order_release);
	return SQLITE_OK; /* the commit itself succeeded either way */
}

void sqlite_ckpt_attach_writer(sqlite_ckpt *c, sqlite3 *db)
{
	if (c)
		sqlite3_wal_hook(db, after_commit, c);
}

/* fdatasync() the database file through the checkpoint connection's own
 * file handle. */
static void sync_database(sqlite_ckpt *c)
{
	sqlite3_file *f = NULL;
	int rc = sqlite3_file_control(c->db, "main", SQLITE_FCNTL_FILE_POINTER, &f);
	if (rc == SQLITE_OK && f && f->pMethods)
		rc = f->pMethods->xSync(f, SQLITE_SYNC_NORMAL);
	if (rc != SQLITE_OK)
		log_warn("store", "syncing the database file after a checkpoint failed: %s",
		         sqlite3_errstr(rc));
}

static void *ckpt_main(void *arg)
{
	sqlite_ckpt *c = arg;
	struct pass last = {0, 0, false};
	int waited = 0;     /* periods the writer has been asked to catch up */
	bool quiet = false; /* the last pass found everything copied, as the one before */
	pthread_mutex_lock(&c->lock);
	while (!c->stopping) {
		struct timespec ts;
		wait_deadline(&ts, CLOCK_REALTIME, quiet ? CKPT_IDLE_MS : c->period_ms);
		atomic_store_explicit(&c->idle, quiet, memory_order_release);
		pthread_cond_timedwait(&c->wake, &c->lock, &ts);
		atomic_store_explicit(&c->idle, false, memory_order_release);
		quiet = false;
		if (c->stopping)
			break;
		/* While the writer is asked to catch up, leave the checkpoint lock
		 * to it; it does so after its next commit. Still asked after a few
		 * periods, it has stopped committing: then nothing is appended any
		 * more, and a pass from here finishes the job just as well. */
		if (atomic_load_explicit(&c->catch_up, memory_order_acquire)) {
			if (++waited < CKPT_WRITER_PERIODS)
				continue;
			atomic_store_explicit(&c->catch_up, false, memory_order_release);
		}
		waited = 0;
		pthread_mutex_unlock(&c->lock);
		/* Cheap when everything is already copied. Under continuous load the
		 * WAL is never fully copied at the moment the writer starts a
		 * transaction, so SQLite keeps appending and the file grows (see
		 * sqlite_ckpt.h for why the writer finishes the job). */
		struct pass p = checkpoint(c->db, "background", &last);
		/* A pass that does not reach the end of the WAL leaves the pages it
		 * copied unsynced, and the pass that does reach it syncs them all at
		 * once: 34 ms for ~10,000 frames, during which the writer's own
		 * fdatasync waits behind it. Syncing after every pass that copied
		 * something spreads that out (ingest p99 20 ms -> 10 ms, measured). */
		bool same = p.done == last.done && p.log == last.log;
		if (p.done > 0 && !same)
			sync_database(c);
		quiet = same && p.all_done;
		last = p;
		if (p.log >= c->catch_up_frames) {
			/* Copy again what was appended meanwhile, until a pass is short,
			 * so the writer's own pass (which it makes while requests wait)
			 * has only a few pages left to copy. */
			for (int i = 0; i < CKPT_CONVERGE_PASSES; i++) {
				int64_t t0 = time_mono_us();
				last = checkpoint(c->db, "background", NULL);
				if (time_mono_us() - t0 < CKPT_SHORT_PASS_US)
					break;
			}
			sync_database(c);
			atomic_store_explicit(&c->catch_up, true, memory_order_release);
		}
		pthread_mutex_lock(&c->lock);
	}
	pthread_mutex_unlock(&c->lock);
	return NULL;
}

int sqlite_ckpt_start(sqlite_ckpt **out, const char *path, int period_ms, int catch_up_frames,
                      th_error *err)
{
	*out = NULL;
	sqlite_ckpt *c = calloc(1, sizeof *c);
	if (!c)
		return th_err(err, TH_ENOMEM, "out of memory");
	c->period_ms = period_ms > 0 ? period_ms : SQLITE_CKPT_PERIOD_MS;
	c->catch_up_frames = catch_up_frames > 0 ? catch_up_frames : SQLITE_CKPT_CATCH_UP_FRAMES;
	int rc = sqlite3_open_v2(path, &c->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL);
	/* This connection runs checkpoints only: no statements worth a lookaside
	 * pool (SQLite's default is ~120 KiB per connection, all of it resident
	 * at idle). */
	if (rc == SQLITE_OK)
		rc = sqlite3_db_config(c->db, SQLITE_DBCONFIG_LOOKASIDE, NULL, 0, 0);
	if (rc == SQLITE_OK)
		rc = sqlite3_busy_timeout(c->db, 1000);
	/* A connection that never read the database does not know it is in WAL
	 * mode, and its checkpoints silently do nothing (frames reported as -1).
	 * Reading the header's schema cookie is enough (the writer's connection
	 * made the file WAL before this one opens), and, unlike `PRAGMA
	 * journal_mode`, does not load and keep a copy of the whole schema. */
	if (rc == SQLITE_OK)
		rc = sqlite3_exec(c->db, "PRAGMA schema_version;", NULL, NULL, NULL);
	if (rc != SQLITE_OK) {
		int code = th_err(err, TH_ESTORE, "cannot open %s for checkpoints: %s", path,
		                  c->db ? sqlite3_errmsg(c->db) : sqlite3_errstr(rc));
		sqlite3_close(c->db);
		free(c);
		return code;
	}
	pthread_mutex_init(&c->lock, NULL);
	pthread_cond_init(&c->wake, NULL);
	if (pthread_create(&c->thread, NULL, ckpt_main, c)) {
		sqlite3_close(c->db);
		pthread_mutex_destroy(&c->lock);
		pthread_cond_destroy(&c->wake);
		free(c);
		return th_err(err, TH_EIO, "cannot start the checkpoint thread");
	}
	thread_name(c->thread, "th-checkpoint");
	*out = c;
	return 0;
}

void sqlite_ckpt_stop(sqlite_ckpt *c)
{
	if (!c)
		return;
	wait_raise(&c->lock, &c->wake, &c->stopping);
	pthread_join(c->thread, NULL);
	checkpoint(c->db, "final", NULL);
	sqlite3_close(c->db);
	pthread_mutex_destroy(&c->lock);
	pthread_cond_destroy(&c->wake);
	free(c);
}
