/* SPDX-License-Identifier: MIT */
/*
 * sqlite_history.c — the history operations of the SQLite store (issue 17):
 * paged reads for `events export`, batched prunes for `events prune` and
 * TRELLOHOOK_RETENTION, the incremental vacuum that gives freed pages back,
 * and `migrate --repack`'s batches that pack payloads stored raw. Each call
 * holds the connection's lock for one short statement or transaction only
 * (the VACUUMs excepted: serve stopped), so ingest, which needs the same
 * lock, keeps answering.
 */
#include <stdlib.h>
#include <string.h>

#include "store/payload_codec.h"
#include "store/sqlite_int.h"

/* The events of a prune range [after, upto] received before the cutoff whose
 * deliveries are all finished (done or dead): the ones a batch deletes. */
#define PRUNE_RANGE "e.seq > ?1 AND e.seq <= ?2 AND e.received_at < ?3"
#define UNFINISHED                                                                                 \
	"EXISTS (SELECT 1 FROM deliveries d WHERE d.event_id = e.id AND d.status NOT IN ('done', " \
	"'dead'))"

static const char sql_walk[] = "SELECT seq, received_at FROM events WHERE seq > ?1"
                               " ORDER BY seq LIMIT ?2";
/* old events in range; of those, finished ones; their deliveries */
static const char sql_count[] =
    "SELECT count(*), coalesce(sum(fin), 0), coalesce(sum(CASE WHEN fin THEN nd ELSE 0 END), 0)"
    " FROM (SELECT NOT " UNFINISHED " AS fin,"
    " (SELECT count(*) FROM deliveries d WHERE d.event_id = e.id) AS nd"
    " FROM events e WHERE " PRUNE_RANGE ")";
static const char sql_del_deliveries[] =
    "DELETE FROM deliveries WHERE event_id IN (SELECT e.id FROM events e WHERE " PRUNE_RANGE
    " AND NOT " UNFINISHED ")";
/* the webhooks' event counters (schema 9) lose what the next statement deletes */
static const char sql_uncount[] =
    "UPDATE webhook_event_count SET n = max(0, n - (SELECT count(*) FROM events e WHERE " PRUNE_RANGE
    " AND e.webhook_id = webhook_event_count.webhook_id"
    " AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.event_id = e.id)))"
    " WHERE webhook_id IN (SELECT e.webhook_id FROM events e WHERE " PRUNE_RANGE ")";
/* after the finished ones' deliveries are gone, an event of the range with no
 * delivery left is exactly one to delete (unfinished ones keep theirs) */
static const char sql_del_events[] =
    "DELETE FROM events AS e WHERE " PRUNE_RANGE
    " AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.event_id = e.id)";

/*
 * Prunes and compactions commit with synchronous=NORMAL (sq_set_sync): in WAL
 * mode that keeps every transaction atomic and the file consistent, and only
 * drops the commit's fsync (the frames reach the disk with the next sync of
 * the WAL: an ingest batch's, or a checkpoint's). A prune lost to a power cut
 * leaves the events as they were, to be pruned again next time; nothing
 * anyone was told is lost. Without the fsync a batch holds the write lock for
 * its deletes only: 10 events 1 ms instead of 16 ms here.
 */

/* Prepare @sql and bind up to three integers (@nb of them). Lock held. */
static sqlite3_stmt *prep_i64(sq *s, const char *sql, const int64_t *v, int nb, th_error *err)
{
	sqlite3_stmt *q = NULL;
	if (sqlite3_prepare_v2(s->db, sql, -1, &q, NULL) != SQLITE_OK) {
		sq_fail(s, err, "preparing a history statement");
		sqlite3_finalize(q);
		return NULL;
	}
	for (int i = 0; i < nb; i++)
		if (sqlite3_bind_int64(q, i + 1, v[i]) != SQLITE_OK) {
			sq_fail(s, err, "binding a history statement");
			sqlite3_finalize(q);
			return NULL;
		}
	return q;
}

/* Run a command of the prune range; *@changes: rows changed. Lock held. */
static int run_range(sq *s, const char *sql, const int64_t v[3], int64_t *changes, const char *what,
                     th_error *err)
{
	sqlite3_stmt *q = prep_i64(s, sql, v, 3, err);
	if (!q)
		return TH_ESTORE;
	int rc = sq_step(q);
	int ret = rc == SQLITE_DONE ? 0 : sq_fail(s, err, what);
	if (!ret && changes)
		*changes = sqlite3_changes64(s->db);
	sqlite3_finalize(q);
	return ret;
}

/* How far this batch may go: the last seq of the next @limit events that was
 * received before @cutoff, stopping at the first that was not. Lock held. */
static int walk(sq *s, int64_t cutoff, size_t limit, prune_batch *b, int64_t *upto, th_error *err)
{
	int64_t v[2] = {b->after_seq, (int64_t)limit};
	sqlite3_stmt *q = prep_i64(s, sql_walk, v, 2, err);
	if (!q)
		return TH_ESTORE;
	size_t rows = 0;
	int rc;
	*upto = b->after_seq;
	b->done = false;
	while ((rc = sq_step(q)) == SQLITE_ROW) {
		rows++;
		if (sqlite3_column_int64(q, 1) >= cutoff) {
			b->done = true;
			break;
		}
		*upto = sqlite3_column_int64(q, 0);
	}
	int ret = rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : sq_fail(s, err, "walking events");
	if (!ret && rows < limit)
		b->done = true;
	sqlite3_finalize(q);
	return ret;
}

/* Count what the range [after, upto] holds (lock held). */
static int count_range(sq *s, const int64_t v[3], prune_batch *b, th_error *err)
{
	sqlite3_stmt *q = prep_i64(s, sql_count, v, 3, err);
	if (!q)
		return TH_ESTORE;
	int ret = 0;
	if (sq_step(q) == SQLITE_ROW) {
		int64_t old = sqlite3_column_int64(q, 0);
		b->events = sqlite3_column_int64(q, 1);
		b->deliveries = sqlite3_column_int64(q, 2);
		b->kept = old - b->events;
	} else {
		ret = sq_fail(s, err, "counting events to prune");
	}
	sqlite3_finalize(q);
	return ret;
}

int sq_events_prune(store *st, int64_t cutoff_ms, size_t limit, bool dry_run, prune_batch *b,
                    th_error *err)
{
	sq *s = sq_of(st);
	if (limit < 1 || limit > 100000)
		return th_err(err, TH_EINVAL, "prune batch: 1 to 100000 events");
	b->events = b->deliveries = b->kept = 0;
	int64_t upto = 0;
	pthread_mutex_lock(&s->mu);
	/* one transaction: the walk, the counts and the deletes see one state; a
	 * dry run only reads, so it takes no write lock (a deferred BEGIN) */
	int ret = 0;
	if (dry_run) {
		if (sqlite3_exec(s->db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK)
			ret = sq_fail(s, err, "starting a transaction");
	} else if ((ret = sq_set_sync(s, false, err)) == 0) {
		ret = sq_run(s, Q_BEGIN, "starting a transaction", err);
	}
	if (ret)
		goto out;
	if ((ret = walk(s, cutoff_ms, limit, b, &upto, err)) != 0)
		goto rollback;
	if (upto > b->after_seq) {
		int64_t v[3] = {b->after_seq, upto, cutoff_ms};
		int64_t dev = 0, dd = 0;
		if ((ret = count_range(s, v, b, err)) != 0)
			goto rollback;
		if (!dry_run &&
		    ((ret = run_range(s, sql_del_deliveries, v, &dd, "pruning deliveries", err)) ||
		     (ret = run_range(s, sql_uncount, v, NULL, "counting pruned events", err)) ||
		     (ret = run_range(s, sql_del_events, v, &dev, "pruning events", err))))
			goto rollback;
		if (!dry_run) {
			b->events = dev; /* what was deleted (the counts said the same) */
			b->deliveries = dd;
		}
		b->after_seq = upto;
	}
	/* a dry run has nothing to commit, but COMMIT also ends its read */
	if ((ret = sq_run(s, Q_COMMIT, "committing a prune batch", err)) != 0)
		goto rollback;
	goto out;
rollback:
	sq_rollback(s);
	b->events = b->deliveries = b->kept = 0;
out:
	if (!dry_run) {
		th_error serr = {0, {0}};
		if (sq_set_sync(s, true, &serr) && !ret)
			ret = th_err(err, TH_ESTORE, "%s", serr.msg);
	}
	pthread_mutex_unlock(&s->mu);
	return ret;
}

/* ---- packing the payloads of rows stored raw before migration 12 ------------------------ */

static const char sql_raw_rows[] = "SELECT seq, payload FROM events"
                                   " WHERE seq > ?1 AND seq <= ?2 AND payload_codec = 0"
                                   " ORDER BY seq";
static const char sql_repack[] = "UPDATE events SET payload_codec = ?2, payload = ?3"
                                 " WHERE seq = ?1 AND payload_codec = 0";

/* Pack the raw rows the scan @sel finds, updating each through @upd (lock
 * held, in the batch's transaction). SQLite lets a connection change the
 * rows a statement of its own is scanning; each row is packed from its
 * bytes before its update, and an updated row no longer matches. */
static int repack_rows(sq *s, sqlite3_stmt *sel, sqlite3_stmt *upd, repack_batch *b, th_error *err)
{
	int rc;
	while ((rc = sq_step(sel)) == SQLITE_ROW) {
		b->raw++;
		int64_t seq = sqlite3_column_int64(sel, 0);
		const void *p = sqlite3_column_blob(sel, 1);
		size_t n = (size_t)sqlite3_column_bytes(sel, 1);
		packed_payload pk;
		payload_pack(p, n, &pk);
		if (pk.codec == PAYLOAD_RAW)
			continue; /* would not shrink: stays as it is */
		int ok = sqlite3_bind_int64(upd, 1, seq) == SQLITE_OK &&
		         sqlite3_bind_int64(upd, 2, pk.codec) == SQLITE_OK &&
		         sqlite3_bind_blob64(upd, 3, pk.data, pk.len, SQLITE_STATIC) == SQLITE_OK &&
		         sq_step(upd) == SQLITE_DONE;
		sqlite3_reset(upd);
		if (ok) {
			b->packed++;
			b->bytes_before += (int64_t)n;
			b->bytes_after += (int64_t)pk.len;
		}
		packed_payload_free(&pk);
		if (!ok)
			return sq_fail(s, err, "packing a stored payload");
	}
	return rc == SQLITE_DONE ? 0 : sq_fail(s, err, "reading payloads stored raw");
}

/* Like a prune batch, with synchronous=NORMAL (see above): a batch lost to a
 * power cut leaves its rows raw, as they were, to be packed next time. */
int sq_payloads_repack(store *st, size_t limit, repack_batch *b, th_error *err)
{
	sq *s = sq_of(st);
	if (limit < 1 || limit > 100000)
		return th_err(err, TH_EINVAL, "repack batch: 1 to 100000 events");
	b->raw = b->packed = b->bytes_before = b->bytes_after = 0;
	int64_t upto = b->upto_seq - b->after_seq > (int64_t)limit ? b->after_seq + (int64_t)limit
	                                                           : b->upto_seq;
	b->done = upto <= b->after_seq;
	if (b->done)
		return 0;
	pthread_mutex_lock(&s->mu);
	sqlite3_stmt *sel = NULL, *upd = NULL;
	int ret = sq_set_sync(s, false, err);
	if (!ret)
		ret = sq_run(s, Q_BEGIN, "starting a transaction", err);
	if (ret)
		goto out;
	int64_t v[2] = {b->after_seq, upto};
	if (!(sel = prep_i64(s, sql_raw_rows, v, 2, err)) ||
	    !(upd = prep_i64(s, sql_repack, NULL, 0, err)))
		ret = TH_ESTORE;
	if (!ret)
		ret = repack_rows(s, sel, upd, b, err);
	sqlite3_finalize(sel);
	sqlite3_finalize(upd);
	if (!ret)
		ret = sq_run(s, Q_COMMIT, "committing a repack batch", err);
	if (ret) {
		sq_rollback(s);
		b->raw = b->packed = b->bytes_before = b->bytes_after = 0;
		goto out;
	}
	b->after_seq = upto;
	b->done = upto >= b->upto_seq;
out:;
	th_error serr = {0, {0}};
	if (sq_set_sync(s, true, &serr) && !ret)
		ret = th_err(err, TH_ESTORE, "%s", serr.msg);
	pthread_mutex_unlock(&s->mu);
	return ret;
}

#define RAW_SAMPLE_POINTS 32

/* Is the first event at or after @seq stored raw, though it would pack?
 * (lock held) */
static int raw_at(sq *s, sqlite3_stmt *q, int64_t seq, bool *found, th_error *err)
{
	sqlite3_reset(q);
	if (sqlite3_bind_int64(q, 1, seq) != SQLITE_OK)
		return sq_fail(s, err, "sampling payloads");
	int rc = sq_step(q);
	if (rc == SQLITE_ROW && sqlite3_column_int64(q, 0) == PAYLOAD_RAW) {
		packed_payload pk;
		payload_pack(sqlite3_column_blob(q, 1), (size_t)sqlite3_column_bytes(q, 1), &pk);
		*found = pk.codec != PAYLOAD_RAW; /* it would shrink */
		packed_payload_free(&pk);
	}
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : sq_fail(s, err, "sampling payloads");
}

int sq_payloads_raw_sample(store *st, bool *found, th_error *err)
{
	*found = false;
	int64_t lo = 0, hi = 0;
	int ret = sq_event_seq_bounds(st, &lo, &hi, err);
	if (ret || hi == 0)
		return ret;
	sq *s = sq_of(st);
	pthread_mutex_lock(&s->mu);
	sqlite3_stmt *q = prep_i64(
	    s, "SELECT payload_codec, payload FROM events WHERE seq >= ?1 ORDER BY seq LIMIT 1",
	    NULL, 0, err);
	ret = q ? 0 : TH_ESTORE;
	/* rows stored raw are a run of seqs (those before the upgrade, less what a
	 * repack packed from the oldest up): points spread over the range find it */
	for (int i = 0; !ret && !*found && i < RAW_SAMPLE_POINTS; i++)
		ret = raw_at(s, q, lo + (hi - lo) * i / (RAW_SAMPLE_POINTS - 1), found, err);
	sqlite3_finalize(q);
	pthread_mutex_unlock(&s->mu);
	return ret;
}

/* One integer from a PRAGMA (lock held). */
static int pragma_i64(sq *s, const char *sql, int64_t *out, th_error *err)
{
	sqlite3_stmt *q = prep_i64(s, sql, NULL, 0, err);
	if (!q)
		return TH_ESTORE;
	int rc = sq_step(q);
	int ret = 0;
	if (rc == SQLITE_ROW)
		*out = sqlite3_column_int64(q, 0);
	else
		ret = sq_fail(s, err, sql);
	sqlite3_finalize(q);
	return ret;
}

/* Give up to @max_pages free pages back to the file system. Only a file with
 * auto_vacuum=INCREMENTAL (new files; `migrate --vacuum` converts old ones)
 * can; in others free pages are still reused by later inserts, so the file
 * stops growing, it only does not shrink. */
int sq_compact(store *st, int64_t max_pages, int64_t *freed_pages, th_error *err)
{
	sq *s = sq_of(st);
	int64_t mode = 0, before = 0, after = 0;
	*freed_pages = 0;
	if (max_pages < 1)
		return 0;
	pthread_mutex_lock(&s->mu);
	int ret = pragma_i64(s, "PRAGMA auto_vacuum", &mode, err);
	if (!ret && mode == 2)
		ret = pragma_i64(s, "PRAGMA freelist_count", &before, err);
	if (!ret && mode == 2 && before > 0) {
		char sql[64];
		str_printf(sql, sizeof sql, "PRAGMA incremental_vacuum(%lld)",
		           (long long)max_pages);
		char *emsg = NULL;
		/* each step frees a page; the pragma runs to its end in one exec */
		ret = sq_set_sync(s, false, err);
		if (!ret && sqlite3_exec(s->db, sql, NULL, NULL, &emsg) != SQLITE_OK)
			ret = th_err(err, TH_ESTORE, "incremental vacuum: %s",
			             emsg ? emsg : sqlite3_errmsg(s->db));
		sqlite3_free(emsg);
		th_error serr = {0, {0}};
		if (sq_set_sync(s, true, &serr) && !ret)
			ret = th_err(err, TH_ESTORE, "%s", serr.msg);
		if (!ret)
			ret = pragma_i64(s, "PRAGMA freelist_count", &after, err);
		if (!ret)
			*freed_pages = before - after;
	}
	pthread_mutex_unlock(&s->mu);
	return ret;
}

/* One VACUUM, switching the file to incremental auto-vacuum (lock held). */
static int vacuum_locked(sq *s, th_error *err)
{
	char *emsg = NULL;
	/* the mode of an existing file changes only with a VACUUM */
	int ret = 0;
	int rc = sqlite3_exec(s->db, "PRAGMA auto_vacuum = INCREMENTAL; VACUUM", NULL, NULL, &emsg);
	int primary = rc & 0xff;
	/* what to do depends on why: a lock held elsewhere is not a full disk */
	const char *hint =
	    primary == SQLITE_BUSY || primary == SQLITE_LOCKED
	        ? "another connection kept the store locked (is serve running?): stop serve and "
	          "every other trellohook command using the store, then run this again"
	    : primary == SQLITE_FULL || primary == SQLITE_IOERR || primary == SQLITE_CANTOPEN
	        ? "it needs free disk space as large as the database, beside it and in the "
	          "temporary directory (TMPDIR)"
	        : "the file is unchanged";
	if (rc != SQLITE_OK)
		ret = th_err(err, TH_ESTORE, "VACUUM (rewriting the file): %s; %s",
		             emsg ? emsg : sqlite3_errmsg(s->db), hint);
	sqlite3_free(emsg);
	return ret;
}

/* The file's size as SQLite counts it (lock held). */
static int file_bytes(sq *s, int64_t *out, th_error *err)
{
	int64_t pages = 0, size = 0;
	int ret = pragma_i64(s, "PRAGMA page_count", &pages, err);
	if (!ret)
		ret = pragma_i64(s, "PRAGMA page_size", &size, err);
	*out = pages * size;
	return ret;
}

int sq_vacuum_mode(store *st, bool convert, int *mode, th_error *err)
{
	sq *s = sq_of(st);
	int64_t m = 0;
	pthread_mutex_lock(&s->mu);
	int ret = pragma_i64(s, "PRAGMA auto_vacuum", &m, err);
	if (!ret && convert && m != 2 && (ret = vacuum_locked(s, err)) == 0)
		ret = pragma_i64(s, "PRAGMA auto_vacuum", &m, err);
	pthread_mutex_unlock(&s->mu);
	*mode = (int)m;
	return ret;
}

int sq_vacuum(store *st, int64_t *bytes_before, int64_t *bytes_after, th_error *err)
{
	sq *s = sq_of(st);
	*bytes_before = *bytes_after = 0;
	pthread_mutex_lock(&s->mu);
	int ret = file_bytes(s, bytes_before, err);
	if (!ret)
		ret = vacuum_locked(s, err);
	if (!ret)
		ret = file_bytes(s, bytes_after, err);
	pthread_mutex_unlock(&s->mu);
	return ret;
}

int sq_event_seq_bounds(store *st, int64_t *min_seq, int64_t *max_seq, th_error *err)
{
	sq *s = sq_of(st);
	*min_seq = *max_seq = 0;
	pthread_mutex_lock(&s->mu);
	sqlite3_stmt *q = prep_i64(
	    s, "SELECT coalesce(min(seq), 0), coalesce(max(seq), 0) FROM events", NULL, 0, err);
	int ret = q ? 0 : TH_ESTORE;
	if (q) {
		if (sq_step(q) == SQLITE_ROW) {
			*min_seq = sqlite3_column_int64(q, 0);
			*max_seq = sqlite3_column_int64(q, 1);
		} else {
			ret = sq_fail(s, err, "reading the range of events");
		}
		sqlite3_finalize(q);
	}
	pthread_mutex_unlock(&s->mu);
	return ret;
}
