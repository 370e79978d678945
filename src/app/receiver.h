/* SPDX-License-Identifier: MIT */
/*
 * receiver — the writers of the receive path (group commit).
 *
 * Request threads submit parsed events; a writer thread takes everything
 * waiting (up to a batch limit), stores it in ONE transaction (one fsync for
 * the batch), then reports each event's outcome through its callback. Only
 * after that callback may a request answer 200: "200" means "on disk". With
 * two writers (PostgreSQL: each has its own connection, so one batch's
 * COMMIT waits for the disk while the other's statements run) callbacks of
 * different batches may run at the same time.
 *
 * The queue is bounded: when it is full, submit fails with TH_EUNAVAIL and the
 * request answers 503 so Trello retries later. Thread-safe.
 */
#ifndef TH_RECEIVER_H
#define TH_RECEIVER_H

#include "model/model.h"
#include "service/ctx.h"

typedef struct receiver receiver;

/* Called on a writer thread once @ev's fate is known. @err is set when
 * result is STORE_PUT_FAILED. Ownership of @ev returns to the callee. */
typedef svc_stored_fn receiver_done_fn;
/* Called on a writer thread after each successful commit with the number
 * of new events (to wake the dispatcher). */
typedef void (*receiver_commit_fn)(void *ctx, size_t new_events);
/* Called on a writer thread for each new event of a committed batch, before
 * its submitter hears back (so @ev is still whole; it is borrowed for the
 * call only). Keep it short: the event's 200 waits for it. */
typedef void (*receiver_event_fn)(void *ctx, const event *ev);

/* Start @writers (1 or 2) writer threads over @sc (which must outlive the
 * receiver): they store through svc_events_store and count into sc->m. */
int receiver_new(receiver **out, svc_ctx *sc, size_t writers, th_error *err);
void receiver_on_commit(receiver *r, receiver_commit_fn fn, void *ctx);
/* Set before events are submitted (not thread-safe against commits). */
void receiver_on_event(receiver *r, receiver_event_fn fn, void *ctx);
/* Queue @ev; on success the receiver owns it until @done is called. */
int receiver_submit(receiver *r, event *ev, receiver_done_fn done, void *ctx, th_error *err);
/* Commit what is queued, stop the writers and free. NULL-safe. */
void receiver_free(receiver *r);

#endif
