/* SPDX-License-Identifier: MIT */
/*
 * history — exporting, pruning and repacking the stored events (issue 17).
 * Each walks the events in seq order in bounded steps, each one short store
 * call, so a million events take constant memory and ingest keeps its lock
 * times.
 */
#ifndef TH_SERVICE_HISTORY_H
#define TH_SERVICE_HISTORY_H

#include <stdbool.h>
#include <stdint.h>

#include "service/ctx.h"

/* Which events an export writes; NULL / 0 fields do not filter. Times are
 * received_at, ms since the epoch: since <= received_at < until. */
typedef struct svc_export_query {
	const char *webhook_id;
	const char *action_type;
	int64_t since_ms, until_ms;
} svc_export_query;

/* One event (payload included) to write; non-zero (a th_error code, with
 * @err) stops the export with that error. */
typedef int (*svc_export_fn)(void *ctx, const event *ev, th_error *err);
/* How far a walk is: @done of @total (seq units, a good enough measure);
 * false stops the walk there (export: TH_EIO "interrupted"; prune: 0 with
 * `stopped` set, the batches done so far committed). May be NULL. */
typedef bool (*svc_history_progress_fn)(void *ctx, uint64_t done, uint64_t total);

/* Every event matching @q stored when the export starts, oldest first, to
 * @emit; *@out_n counts them. Events stored meanwhile are not included. */
int svc_events_export(svc_ctx *sc, const svc_export_query *q, svc_export_fn emit,
                      svc_history_progress_fn progress, void *ctx, int64_t *out_n, th_error *err);

/* A prune's pace. Each step (a batch of events, or one compaction of free
 * pages) is one short transaction; its size adapts so that a step takes
 * about SVC_PRUNE_STEP_MS (a batch of 3 KB events rewrites a page per event,
 * so how many fit depends on the disk), and after each step the prune pauses
 * SVC_PRUNE_DUTY times as long as the step took (at least
 * SVC_PRUNE_PAUSE_MS): ingest, in this process or in serve, finds the write
 * lock free most of the time and never waits behind more than one step. */
#define SVC_PRUNE_BATCH_MIN 10
#define SVC_PRUNE_BATCH_FIRST 100
#define SVC_PRUNE_BATCH_MAX 500
#define SVC_COMPACT_PAGES_MIN 8
#define SVC_COMPACT_PAGES_FIRST 64
#define SVC_COMPACT_PAGES_MAX 512
#define SVC_PRUNE_STEP_MS 4
#define SVC_PRUNE_DUTY 3
#define SVC_PRUNE_PAUSE_MS 2

typedef struct svc_prune_result {
	int64_t cutoff_ms;   /* events received before this were candidates */
	int64_t events;      /* deleted (dry run: would be) */
	int64_t deliveries;  /* their deliveries */
	int64_t kept;        /* old events kept: a delivery of theirs is not finished */
	int64_t pages_freed; /* SQLite pages given back to the file system */
	int64_t batches;
	bool stopped; /* the progress callback asked to stop before the end */
} svc_prune_result;

/* Delete the events received before now - @older_than_ms whose deliveries are
 * all done or dead, with those deliveries, in batches paced as above, giving
 * freed pages back after each (SQLite with incremental auto-vacuum). @dry_run
 * counts and changes nothing. A failing batch stops the prune (@out holds
 * what the batches before it did). */
int svc_events_prune(svc_ctx *sc, int64_t older_than_ms, bool dry_run,
                     svc_history_progress_fn progress, void *ctx, svc_prune_result *out,
                     th_error *err);

#define SVC_REPACK_BATCH 500 /* seqs a repack batch looks at */

typedef struct svc_repack_result {
	int64_t raw;          /* payloads found stored raw */
	int64_t packed;       /* of those, packed now (the others would not shrink) */
	int64_t bytes_before; /* the packed ones' bytes before */
	int64_t bytes_after;  /* and after */
	int64_t file_before;  /* the SQLite file's size before the final VACUUM */
	int64_t file_after;   /* and after (both 0 when nothing was packed) */
	bool stopped;         /* the progress callback asked to stop before the end */
} svc_repack_result;

/* `trellohook migrate --repack`: pack the payloads of the events stored raw
 * (SQLite, before schema 12; store/payload_codec.h) where that makes them
 * smaller, a transaction per SVC_REPACK_BATCH seqs, then rewrite the file
 * once (VACUUM): a packed row leaves free space inside its page, which
 * SQLite neither reuses (events are appended at the end) nor gives back
 * otherwise. The VACUUM holds the write lock throughout and needs free disk
 * as large as the file: run it with serve stopped. A crash or a power cut
 * loses nothing: a batch not committed leaves its rows raw, readable as
 * before. PostgreSQL: nothing to do (TOAST compresses its values). */
int svc_payloads_repack(svc_ctx *sc, svc_history_progress_fn progress, void *ctx,
                        svc_repack_result *out, th_error *err);

/* *@found: payloads an older version stored raw are still there, so that
 * `migrate --repack` would shrink them (store_payloads_raw_sample: a few
 * events spread over the store, each read by its key). For doctor. */
int svc_payloads_raw_sample(svc_ctx *sc, bool *found, th_error *err);

/* The store's auto-vacuum mode (see store_vacuum_mode): -1 not SQLite, 0
 * none, 1 full, 2 incremental; @convert makes an older SQLite file
 * incremental with one VACUUM (`trellohook migrate --vacuum`). */
int svc_vacuum_mode(svc_ctx *sc, bool convert, int *mode, th_error *err);

#endif
