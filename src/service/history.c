/* SPDX-License-Identifier: MIT */
/* history.c — events export, prune and repack, in bounded steps (see history.h). */
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

static void pause_ms(int64_t ms)
{
	struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) != 0) {
	}
}

/* The next size of a step that took @took_us at size @n: halved when slower
 * than the target, doubled when much faster, within [@lo, @hi]. */
static int64_t next_size(int64_t n, int64_t took_us, int64_t lo, int64_t hi)
{
	if (took_us > SVC_PRUNE_STEP_MS * 1000)
		n /= 2;
	else if (took_us < SVC_PRUNE_STEP_MS * 1000 / 3)
		n *= 2;
	return n < lo ? lo : n > hi ? hi : n;
}

/* After a step that took @took_us: leave the lock to others for a while. */
static void yield_after(int64_t took_us)
{
	int64_t ms = took_us * SVC_PRUNE_DUTY / 1000;
	pause_ms(ms < SVC_PRUNE_PAUSE_MS ? SVC_PRUNE_PAUSE_MS : ms);
}

typedef struct pacer {
	int64_t batch, pages; /* the current step sizes */
} pacer;

/* Give free pages back in paced steps until a step frees fewer than it may
 * (or, with @once, after one step). */
static int compact_steps(svc_ctx *sc, pacer *pc, bool once, svc_prune_result *out, th_error *err)
{
	for (;;) {
		int64_t freed = 0, t0 = time_mono_us();
		int ret = store_compact(sc->st, pc->pages, &freed, err);
		int64_t took = time_mono_us() - t0;
		if (ret)
			return ret;
		out->pages_freed += freed;
		bool more = freed >= pc->pages;
		if (freed > 0) {
			pc->pages = next_size(pc->pages, took, SVC_COMPACT_PAGES_MIN,
			                      SVC_COMPACT_PAGES_MAX);
			yield_after(took);
		}
		if (!more || once)
			return 0;
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
	int64_t lo, hi;
	int ret = store_event_seq_bounds(sc->st, &lo, &hi, err);
	if (ret || hi == 0)
		return ret;
	pacer pc = {SVC_PRUNE_BATCH_FIRST, SVC_COMPACT_PAGES_FIRST};
	prune_batch b = {lo - 1, false, 0, 0, 0};
	while (!b.done) {
		int64_t t0 = time_mono_us();
		if ((ret = store_events_prune(sc->st, out->cutoff_ms, (size_t)pc.batch, dry_run, &b,
		                              err)) != 0)
			return ret;
		int64_t took = time_mono_us() - t0;
		out->batches++;
		out->events += b.events;
		out->deliveries += b.deliveries;
		out->kept += b.kept;
		pc.batch = next_size(pc.batch, took, SVC_PRUNE_BATCH_MIN, SVC_PRUNE_BATCH_MAX);
		if (!dry_run)
			yield_after(took);
		/* one compaction step per batch keeps the file from growing meanwhile */
		if (!dry_run && b.events > 0 && (ret = compact_steps(sc, &pc, true, out, err)) != 0)
			return ret;
		if (progress && !b.done &&
		    !progress(ctx, (uint64_t)(b.after_seq - lo + 1), (uint64_t)(hi - lo + 1))) {
			out->stopped = true;
			break;
		}
	}
	/* what the batches' steps left, at the same pace */
	if (!dry_run && !out->stopped && out->events > 0)
		return compact_steps(sc, &pc, false, out, err);
	return 0;
}

int svc_payloads_repack(svc_ctx *sc, svc_history_progress_fn progress, void *ctx,
                        svc_repack_result *out, th_error *err)
{
	memset(out, 0, sizeof *out);
	int64_t lo, hi;
	int ret = store_event_seq_bounds(sc->st, &lo, &hi, err);
	if (ret || hi == 0)
		return ret;
	/* the events stored when the repack starts; later ones are packed already */
	repack_batch b = {.after_seq = lo - 1, .upto_seq = hi};
	while (!b.done) {
		if ((ret = store_payloads_repack(sc->st, SVC_REPACK_BATCH, &b, err)) != 0)
			return ret;
		out->raw += b.raw;
		out->packed += b.packed;
		out->bytes_before += b.bytes_before;
		out->bytes_after += b.bytes_after;
		if (progress && !b.done &&
		    !progress(ctx, (uint64_t)(b.after_seq - lo + 1), (uint64_t)(hi - lo + 1))) {
			out->stopped = true;
			return 0;
		}
	}
	/* the rows shrank inside their pages: only a rewrite gives the space back */
	if (out->packed > 0)
		return store_vacuum(sc->st, &out->file_before, &out->file_after, err);
	return 0;
}

int svc_payloads_raw_sample(svc_ctx *sc, bool *found, th_error *err)
{
	return store_payloads_raw_sample(sc->st, found, err);
}

int svc_vacuum_mode(svc_ctx *sc, bool convert, int *mode, th_error *err)
{
	return store_vacuum_mode(sc->st, convert, mode, err);
}
