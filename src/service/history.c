/* SPDX-License-Identifier: MIT */
/* history.c — events export and prune, in bounded steps (see history.h). */
#include <string.h>
#include <time.h>

#include "service/history.h"
#include "store/store.h"

/* An export page covers at most this many seqs and returns at most
 * EXPORT_PAGE rows: a filter that matches little never makes one read scan
 * much, and a page of payloads (each at most TRELLOHOOK_MAX_BODY) stays
 * small. */
#define EXPORT_WINDOW 5000
#define EXPORT_PAGE 200

int svc_events_export(svc_ctx *sc, const svc_export_query *q, svc_export_fn emit,
                      svc_history_progress_fn progress, void *ctx, int64_t *out_n, th_error *err)
{
	int64_t lo, hi;
	*out_n = 0;
	int ret = store_event_seq_bounds(sc->st, &lo, &hi, err);
	if (ret || hi == 0)
		return ret;
	event_page_query pq = {q->webhook_id, q->action_type, q->since_ms, q->until_ms, lo - 1, 0,
	                       EXPORT_PAGE};
	while (pq.after_seq < hi) {
		pq.upto_seq = pq.after_seq + EXPORT_WINDOW < hi ? pq.after_seq + EXPORT_WINDOW : hi;
		event_row *rows = NULL;
		size_t n = 0;
		if ((ret = store_event_page(sc->st, &pq, &rows, &n, err)) != 0)
			return ret;
		for (size_t i = 0; i < n && !ret; i++) {
			ret = emit(ctx, &rows[i].ev, err);
			if (!ret)
				++*out_n;
		}
		/* a full page may have more in its window: go on after its last row */
		int64_t next = n == pq.limit ? rows[n - 1].seq : pq.upto_seq;
		event_row_list_free(rows, n);
		if (ret)
			return ret;
		pq.after_seq = next;
		if (progress &&
		    !progress(ctx, (uint64_t)(pq.after_seq - lo + 1), (uint64_t)(hi - lo + 1)))
			return th_err(err, TH_EIO, "interrupted");
	}
	return 0;
}

static void pause_ms(long ms)
{
	struct timespec ts = {0, ms * 1000000L};
	while (nanosleep(&ts, &ts) != 0) {
	}
}

int svc_events_prune(svc_ctx *sc, int64_t older_than_ms, bool dry_run,
                     svc_history_progress_fn progress, void *ctx, svc_prune_result *out,
                     th_error *err)
{
	memset(out, 0, sizeof *out);
	if (older_than_ms < 0)
		return th_err(err, TH_EINVAL, "prune: the age must not be negative");
	out->cutoff_ms = time_now_ms() - older_than_ms;
	int64_t lo, hi, freed;
	int ret = store_event_seq_bounds(sc->st, &lo, &hi, err);
	if (ret || hi == 0)
		return ret;
	prune_batch b = {lo - 1, false, 0, 0, 0};
	while (!b.done) {
		if ((ret = store_events_prune(sc->st, out->cutoff_ms, SVC_PRUNE_BATCH, dry_run, &b,
		                              err)) != 0)
			return ret;
		out->batches++;
		out->events += b.events;
		out->deliveries += b.deliveries;
		out->kept += b.kept;
		if (!dry_run && b.events > 0) {
			if ((ret = store_compact(sc->st, SVC_COMPACT_PAGES, &freed, err)) != 0)
				return ret;
			out->pages_freed += freed;
		}
		if (progress && !b.done &&
		    !progress(ctx, (uint64_t)(b.after_seq - lo + 1), (uint64_t)(hi - lo + 1))) {
			out->stopped = true;
			break;
		}
		if (!b.done)
			pause_ms(SVC_PRUNE_PAUSE_MS);
	}
	/* what the batches' compaction left (a batch can free more pages than it
	 * gives back), a bounded step at a time */
	while (!dry_run && !out->stopped && out->events > 0) {
		if ((ret = store_compact(sc->st, SVC_COMPACT_PAGES, &freed, err)) != 0)
			return ret;
		out->pages_freed += freed;
		if (freed < SVC_COMPACT_PAGES)
			break;
		pause_ms(SVC_PRUNE_PAUSE_MS);
	}
	return 0;
}

int svc_vacuum_mode(svc_ctx *sc, bool convert, int *mode, th_error *err)
{
	return store_vacuum_mode(sc->st, convert, mode, err);
}
