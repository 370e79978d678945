/* SPDX-License-Identifier: MIT */
/*
 * store_suite — the store tests every backend must pass, written once and
 * compiled into each backend's test binary (test_store: SQLite, test_store_pg:
 * PostgreSQL). A backend's file supplies the fixture: its setup opens a fresh,
 * migrated, empty store and puts a store_fx (first member of its own fixture
 * struct) in *state, or NULL when the backend is unavailable (the shared
 * tests then skip); its teardown closes the store and removes the database.
 */
#ifndef TH_TEST_STORE_SUITE_H
#define TH_TEST_STORE_SUITE_H

#include <stdbool.h>
#include <stddef.h>

#include "model/model.h"
#include "store/store.h"

/* What the shared tests need of a backend's fixture. */
typedef struct store_fx {
	store *st;     /* the fresh store, owned by the fixture */
	char url[600]; /* its DATABASE_URL, to open more handles on the same database */
} store_fx;

/* Every handler kind, for delivery_claim. */
#define SUITE_ALL_KINDS ((1u << HANDLER_EXEC) | (1u << HANDLER_FORWARD) | (1u << HANDLER_FUNC))

store_fx *suite_fx(void **state);
/* A backend's setup, last step: open @f->url into @f->st and put the fixture
 * in *state (0). @f is the first member of the backend's heap-allocated
 * fixture; on failure it prints why, frees that fixture and returns -1. */
int suite_fx_open(void **state, store_fx *f);

/* Helpers, also for the backends' own tests; they fail the test on error. */
event *suite_ev_new(const char *webhook_id, const char *action_id, const char *type,
                    const char *summary, const char *payload, size_t len);
void suite_ev_free(event *ev);
enum store_put suite_put1(store *st, event *ev);
void suite_ensure_webhooks(store *st, event **evs, size_t n);
int suite_events_put(store *st, event **evs, size_t n, enum store_put *results, th_error *err);
void suite_add_webhook(store *st, const char *id, const char *model, const char *tok);
void suite_add_handler(store *st, const char *id, enum handler_kind kind, const char *on,
                       const char *model, bool enabled);
/* The random queue of the claim comparison tests (store_suite_claim.c). */
void suite_claim_random_queue(store *st, event **evs, int n);
/* The claim comparison (store_suite_claim.c): the backend's old full-walk
 * query appends the ids it claims to @want; scramble moves states. */
typedef void suite_old_claim_fn(void *ctx, int64_t now, unsigned kinds, int limit, buf *want);
typedef void suite_scramble_fn(void *ctx, int round);
void suite_claim_compare(store *st, suite_old_claim_fn *old, suite_scramble_fn *scramble,
                         void *ctx);

/* The shared tests (cmocka test functions; *state is the backend's fixture). */
/* suite_recover_dead_claims re-runs the binary as a child; each main()
 * calls suite_child_main() first (it returns at once in a normal run). */
#define CLAIM_CHILD_FD "TH_SUITE_CLAIM_FD"
#define CLAIM_CHILD_PARENT "TH_SUITE_CLAIM_PARENT"
#define CLAIM_CHILD_URL "TH_SUITE_CLAIM_URL"
#define CLAIM_CHILD_EVENT "TH_SUITE_CLAIM_EVENT"
void suite_child_main(void);

void suite_webhook_crud(void **state);
void suite_webhook_removal_not_undone(void **state);
void suite_token_crud(void **state);
void suite_handler_crud(void **state);
void suite_users_sessions(void **state);
void suite_backfill_marks(void **state);
void suite_events_dedupe(void **state);
void suite_events_survive_webhook_delete(void **state);
void suite_events_refused_for_gone_webhooks(void **state);
void suite_payload_bytes_exact(void **state);
void suite_event_source_member(void **state);
void suite_event_list_filters(void **state);
void suite_deliveries_for_matching_handlers(void **state);
void suite_claim_order(void **state);
void suite_lease_expiry(void **state);
void suite_claim_behind_blocked_chain(void **state);
void suite_claim_behind_parked_handlers(void **state);
void suite_claim_replay_generations(void **state);
void suite_claim_replay_generations_behind(void **state);
void suite_finish_retry_replay(void **state);
void suite_finish_many(void **state);
void suite_last_event_at(void **state);
void suite_event_rollup(void **state);
void suite_events_big_batch(void **state);
void suite_handler_delete_drops_pending(void **state);
void suite_two_handles(void **state);
void suite_batch_throughput(void **state);
void suite_token_identity(void **state);
void suite_recover_dead_claims(void **state);
void suite_store_health(void **state);
void suite_history_page(void **state);
void suite_history_prune(void **state);
#ifdef TH_FAULT_INJECTION
void suite_fault_events_put(void **state);
void suite_fault_dispatch(void **state);
void suite_fault_health(void **state);
#define STORE_SUITE_FAULT_TESTS(setup, teardown)                                    \
	, cmocka_unit_test_setup_teardown(suite_fault_events_put, setup, teardown), \
	    cmocka_unit_test_setup_teardown(suite_fault_dispatch, setup, teardown), \
	    cmocka_unit_test_setup_teardown(suite_fault_health, setup, teardown)
#else
#define STORE_SUITE_FAULT_TESTS(setup, teardown)
#endif

/* The shared tests as cmocka entries with the backend's @setup/@teardown. */
#define STORE_SUITE_TESTS(setup, teardown)                                                         \
	cmocka_unit_test_setup_teardown(suite_webhook_crud, setup, teardown),                      \
	    cmocka_unit_test_setup_teardown(suite_webhook_removal_not_undone, setup, teardown),    \
	    cmocka_unit_test_setup_teardown(suite_token_crud, setup, teardown),                    \
	    cmocka_unit_test_setup_teardown(suite_handler_crud, setup, teardown),                  \
	    cmocka_unit_test_setup_teardown(suite_users_sessions, setup, teardown),                \
	    cmocka_unit_test_setup_teardown(suite_backfill_marks, setup, teardown),                \
	    cmocka_unit_test_setup_teardown(suite_events_dedupe, setup, teardown),                 \
	    cmocka_unit_test_setup_teardown(suite_events_survive_webhook_delete, setup, teardown), \
	    cmocka_unit_test_setup_teardown(suite_events_refused_for_gone_webhooks, setup,         \
	                                    teardown),                                             \
	    cmocka_unit_test_setup_teardown(suite_payload_bytes_exact, setup, teardown),           \
	    cmocka_unit_test_setup_teardown(suite_event_source_member, setup, teardown),           \
	    cmocka_unit_test_setup_teardown(suite_event_list_filters, setup, teardown),            \
	    cmocka_unit_test_setup_teardown(suite_deliveries_for_matching_handlers, setup,         \
	                                    teardown),                                             \
	    cmocka_unit_test_setup_teardown(suite_claim_order, setup, teardown),                   \
	    cmocka_unit_test_setup_teardown(suite_lease_expiry, setup, teardown),                  \
	    cmocka_unit_test_setup_teardown(suite_claim_behind_blocked_chain, setup, teardown),    \
	    cmocka_unit_test_setup_teardown(suite_claim_behind_parked_handlers, setup, teardown),  \
	    cmocka_unit_test_setup_teardown(suite_claim_replay_generations, setup, teardown),      \
	    cmocka_unit_test_setup_teardown(suite_claim_replay_generations_behind, setup,          \
	                                    teardown),                                             \
	    cmocka_unit_test_setup_teardown(suite_finish_retry_replay, setup, teardown),           \
	    cmocka_unit_test_setup_teardown(suite_finish_many, setup, teardown),                   \
	    cmocka_unit_test_setup_teardown(suite_last_event_at, setup, teardown),                 \
	    cmocka_unit_test_setup_teardown(suite_event_rollup, setup, teardown),                  \
	    cmocka_unit_test_setup_teardown(suite_events_big_batch, setup, teardown),              \
	    cmocka_unit_test_setup_teardown(suite_handler_delete_drops_pending, setup, teardown),  \
	    cmocka_unit_test_setup_teardown(suite_two_handles, setup, teardown),                   \
	    cmocka_unit_test_setup_teardown(suite_batch_throughput, setup, teardown),              \
	    cmocka_unit_test_setup_teardown(suite_token_identity, setup, teardown),                \
	    cmocka_unit_test_setup_teardown(suite_recover_dead_claims, setup, teardown),           \
	    cmocka_unit_test_setup_teardown(suite_store_health, setup, teardown),                  \
	    cmocka_unit_test_setup_teardown(suite_history_page, setup, teardown),                  \
	    cmocka_unit_test_setup_teardown(suite_history_prune, setup, teardown)                  \
	        STORE_SUITE_FAULT_TESTS(setup, teardown)

#endif
