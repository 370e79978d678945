/* sqlite_ckpt.c — see sqlite_ckpt.h. */
#include <pthread.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdlib.h>
#include <time.h>

#include "store/sqlite_ckpt.h"
#include "util/log.h"

#define CKPT_PERIOD_MS 200       /* how often new WAL frames are copied into the database */
#define CKPT_RESTART_FRAMES 8192 /* WAL size (pages, ~32 MiB) that asks for a restart */

struct sqlite_ckpt {
	sqlite3 *db;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t wake;
	bool stopping;
};

/* One checkpoint; PASSIVE copies what it can without waiting for anyone.
 * Returns the number of frames in the WAL (0 when unknown). */
static int checkpoint(sqlite_ckpt *c, int mode)
{
	int log_frames = 0, done_frames = 0;
	int rc = sqlite3_wal_checkpoint_v2(c->db, NULL, mode, &log_frames, &done_frames);
	if (rc != SQLITE_OK && rc != SQLITE_BUSY)
		log_warn("store", "WAL checkpoint failed: %s", sqlite3_errmsg(c->db));
	else
		log_debug("store", "WAL checkpoint%s: %d of %d frames",
		          mode == SQLITE_CHECKPOINT_RESTART ? " (restart)" : "", done_frames,
		          log_frames);
	return log_frames > 0 ? log_frames : 0;
}

static void *ckpt_main(void *arg)
{
	sqlite_ckpt *c = arg;
	pthread_mutex_lock(&c->lock);
	while (!c->stopping) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += CKPT_PERIOD_MS * 1000000L;
		while (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&c->wake, &c->lock, &ts);
		if (c->stopping)
			break;
		pthread_mutex_unlock(&c->lock);
		/* Cheap when everything is already copied; otherwise copies and syncs.
		 * Under continuous load the writer never finds the WAL fully copied, so
		 * it keeps appending and the file grows (and every fdatasync then also
		 * flushes the growing file's metadata). Once the WAL is large, a RESTART
		 * checkpoint holds writers back just long enough to copy the few frames
		 * the PASSIVE pass left, and the next commit starts the WAL over. */
		if (checkpoint(c, SQLITE_CHECKPOINT_PASSIVE) >= CKPT_RESTART_FRAMES)
			checkpoint(c, SQLITE_CHECKPOINT_RESTART);
		pthread_mutex_lock(&c->lock);
	}
	pthread_mutex_unlock(&c->lock);
	return NULL;
}

int sqlite_ckpt_start(sqlite_ckpt **out, const char *path, th_error *err)
{
	*out = NULL;
	sqlite_ckpt *c = calloc(1, sizeof *c);
	if (!c)
		return th_err(err, TH_ENOMEM, "out of memory");
	int rc = sqlite3_open_v2(path, &c->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_busy_timeout(c->db, 1000);
	/* A connection that never read the database does not know it is in WAL
	 * mode, and its checkpoints silently do nothing (frames reported as -1). */
	if (rc == SQLITE_OK)
		rc = sqlite3_exec(c->db, "PRAGMA journal_mode = WAL;", NULL, NULL, NULL);
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
	*out = c;
	return 0;
}

void sqlite_ckpt_stop(sqlite_ckpt *c)
{
	if (!c)
		return;
	pthread_mutex_lock(&c->lock);
	c->stopping = true;
	pthread_cond_signal(&c->wake);
	pthread_mutex_unlock(&c->lock);
	pthread_join(c->thread, NULL);
	checkpoint(c, SQLITE_CHECKPOINT_PASSIVE);
	sqlite3_close(c->db);
	pthread_mutex_destroy(&c->lock);
	pthread_cond_destroy(&c->wake);
	free(c);
}
