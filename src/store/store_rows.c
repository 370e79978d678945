/* SPDX-License-Identifier: MIT */
/*
 * store_rows.c — every row type of the store read once, over the store_row
 * cursor each backend provides (store_int.h): a column reader per type
 * (text, integer, boolean, blob) and one reader per element type, plus the
 * loops that gather one row or all of them; and the other way, the
 * parameters of the row types a backend writes (store_params).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/payload_codec.h"
#include "store/store_int.h"

/* The next column as a heap copy; NULL for SQL NULL (oom set when a copy fails). */
char *row_text(store_row *r)
{
	int c = r->col++;
	if (r->ops->is_null(r, c))
		return NULL;
	size_t n = 0;
	const char *t = r->ops->text(r, c, &n);
	char *v = t ? str_ndup(t, n) : NULL;
	if (!v)
		r->oom = true;
	return v;
}

/* The next column as an integer (NULL: 0). */
int64_t row_int(store_row *r)
{
	return r->ops->integer(r, r->col++);
}

/* The next column as a boolean (NULL: false). */
bool row_bool(store_row *r)
{
	return r->ops->boolean(r, r->col++);
}

/* The next column's bytes, exactly, with a NUL after them (oom set when
 * they cannot be copied). */
char *row_blob(store_row *r, size_t *len)
{
	*len = 0;
	char *v = r->ops->blob(r, r->col++, len);
	if (!v)
		r->oom = true;
	return v;
}

/* A stored name of an enum, parsed; @dflt for NULL or an unknown name. */
#define READ_ENUM(r, parse, out, dflt)                  \
	do {                                            \
		char *name_ = row_text(r);              \
		if (!name_ || parse(name_, (out)) != 0) \
			*(out) = (dflt);                \
		free(name_);                            \
	} while (0)

static void read_webhook(store_row *r, void *e)
{
	webhook *w = e;
	w->id = row_text(r);
	w->trello_id = row_text(r);
	w->id_model = row_text(r);
	w->model_type = row_text(r);
	w->model_name = row_text(r);
	w->description = row_text(r);
	w->callback_url = row_text(r);
	w->token = row_text(r);
	READ_ENUM(r, webhook_state_parse, &w->state, WEBHOOK_PENDING);
	w->active = row_bool(r);
	w->consecutive_failures = (int)row_int(r);
	w->first_consecutive_fail_at = row_int(r);
	w->created_at = row_int(r);
	w->last_event_at = row_int(r);
	w->token_fp = row_text(r);
	w->event_count = row_int(r);
}

static void read_token(store_row *r, void *e)
{
	token *t = e;
	t->token = row_text(r);
	t->member = row_text(r);
	t->expires_at = row_int(r);
	READ_ENUM(r, token_state_parse, &t->state, TOKEN_UNCHECKED);
	t->checked_at = row_int(r);
	t->created_at = row_int(r);
	t->token_fp = row_text(r);
}

/* EVENT_PAYLOAD_COLS into @ev: the bytes received, whichever way they were
 * stored (raw ones are used as read, without a second copy). */
static void read_payload(store_row *r, event *ev)
{
	int64_t codec = row_int(r);
	size_t n = 0;
	char *stored = row_blob(r, &n);
	if (!stored || codec == PAYLOAD_RAW) {
		ev->payload = stored; /* any bytes, kept exactly */
		ev->payload_len = n;
		return;
	}
	char why[160];
	int rc = payload_unpack(codec, stored, n, &ev->payload, &ev->payload_len, why, sizeof why);
	free(stored);
	if (rc == TH_ENOMEM)
		r->oom = true;
	else if (rc != 0)
		snprintf(r->bad, sizeof r->bad,
		         "the stored payload of event %s cannot be read: %s; the database file may"
		         " be damaged: run 'trellohook doctor', and restore it from a backup",
		         ev->id ? ev->id : "(no id)", why);
}

int64_t store_read_event(store_row *r, event *ev, bool with_payload)
{
	int64_t seq = row_int(r);
	char **text[] = {&ev->id,          &ev->webhook_id, &ev->action_id, &ev->action_type,
	                 &ev->action_date, &ev->model_id,   &ev->board_id,  &ev->board_name,
	                 &ev->list_id,     &ev->list_name,  &ev->card_id,   &ev->card_name,
	                 &ev->member,      &ev->summary};
	for (size_t i = 0; i < TH_ARRAY_LEN(text); i++)
		*text[i] = row_text(r);
	READ_ENUM(r, event_source_parse, &ev->source, EVENT_FROM_DELIVERY);
	ev->member_id = row_text(r);
	ev->received_at = row_int(r);
	if (with_payload)
		read_payload(r, ev);
	return seq;
}

static void read_event_full(store_row *r, void *e)
{
	(void)store_read_event(r, e, true);
}

static void read_event_row(store_row *r, void *e)
{
	event_row *er = e;
	er->seq = store_read_event(r, &er->ev, false);
}

static void read_event_row_full(store_row *r, void *e)
{
	event_row *er = e;
	er->seq = store_read_event(r, &er->ev, true);
}

static void read_handler(store_row *r, void *e)
{
	handler *h = e;
	h->id = row_text(r);
	READ_ENUM(r, handler_kind_parse, &h->kind, HANDLER_EXEC);
	h->target = row_text(r);
	h->on = row_text(r);
	h->model = row_text(r);
	h->secret = row_text(r);
	h->enabled = row_bool(r);
	h->created_at = row_int(r);
}

static void read_delivery(store_row *r, void *e)
{
	delivery *d = e;
	d->id = row_text(r);
	d->event_id = row_text(r);
	d->handler_id = row_text(r);
	READ_ENUM(r, delivery_status_parse, &d->status, DELIVERY_PENDING);
	d->attempts = (int)row_int(r);
	d->next_attempt_at = row_int(r);
	d->last_error = row_text(r);
	d->updated_at = row_int(r);
	d->claimed_until = row_int(r);
}

static void read_session(store_row *r, void *e)
{
	user_session *us = e;
	us->id_hash = row_text(r);
	us->user = row_text(r);
	us->csrf = row_text(r);
	us->expires_at = row_int(r);
}

static void read_backfill_mark(store_row *r, void *e)
{
	backfill_mark *m = e;
	m->webhook_id = row_text(r);
	m->last_action_id = row_text(r);
	m->last_action_at = row_int(r);
	m->model_kind = row_text(r);
	m->error = row_text(r);
	m->recovered = row_int(r);
	m->gap_from = row_int(r);
	m->gap_to = row_int(r);
	m->updated_at = row_int(r);
}

static void read_rollup(store_row *r, void *e)
{
	event_rollup_row *x = e;
	x->webhook_id = row_text(r);
	x->action_type = row_text(r);
	x->hour = row_int(r);
	x->n = row_int(r);
}

static void read_delivery_rollup(store_row *r, void *e)
{
	delivery_rollup_row *x = e;
	x->hour = row_int(r);
	x->handler_id = row_text(r);
	char *st = row_text(r);
	if (!st || delivery_status_parse(st, &x->status) != 0)
		x->status = DELIVERY_FAILED; /* only done/failed/dead are written */
	free(st);
	x->bucket = (int)row_int(r);
	x->n = row_int(r);
}

static void read_text(store_row *r, void *e)
{
	*(char **)e = row_text(r);
}

static void clear_webhook(void *e)
{
	webhook_clear(e);
}
static void clear_token(void *e)
{
	token_clear(e);
}
static void clear_event(void *e)
{
	store_event_clear(e);
}
static void clear_event_row(void *e)
{
	store_event_clear(&((event_row *)e)->ev);
}
static void clear_handler(void *e)
{
	handler_clear(e);
}
static void clear_delivery(void *e)
{
	delivery_clear(e);
}
static void clear_session(void *e)
{
	user_session_clear(e);
}
static void clear_backfill_mark(void *e)
{
	backfill_mark_clear(e);
}

static void clear_rollup(void *e)
{
	event_rollup_row *x = e;
	free(x->webhook_id);
	free(x->action_type);
	x->webhook_id = x->action_type = NULL;
}
static void clear_delivery_rollup(void *e)
{
	delivery_rollup_row *x = e;
	free(x->handler_id);
	x->handler_id = NULL;
}
static void clear_text(void *e)
{
	free(*(char **)e);
	*(char **)e = NULL;
}

const store_rowtype store_rt_webhook = {sizeof(webhook), read_webhook, clear_webhook};
const store_rowtype store_rt_token = {sizeof(token), read_token, clear_token};
const store_rowtype store_rt_event = {sizeof(event), read_event_full, clear_event};
const store_rowtype store_rt_event_row = {sizeof(event_row), read_event_row, clear_event_row};
const store_rowtype store_rt_event_row_full = {sizeof(event_row), read_event_row_full,
                                               clear_event_row};
const store_rowtype store_rt_handler = {sizeof(handler), read_handler, clear_handler};
const store_rowtype store_rt_delivery = {sizeof(delivery), read_delivery, clear_delivery};
const store_rowtype store_rt_session = {sizeof(user_session), read_session, clear_session};
const store_rowtype store_rt_backfill_mark = {sizeof(backfill_mark), read_backfill_mark,
                                              clear_backfill_mark};
const store_rowtype store_rt_rollup = {sizeof(event_rollup_row), read_rollup, clear_rollup};
const store_rowtype store_rt_delivery_rollup = {sizeof(delivery_rollup_row), read_delivery_rollup,
                                                clear_delivery_rollup};
const store_rowtype store_rt_text = {sizeof(char *), read_text, clear_text};

/* ---- writing parameters ------------------------------------------------------------- */

/* A row's created_at: the caller's, or now for a new row. */
static int64_t created_or_now(int64_t created_at)
{
	return created_at ? created_at : time_now_ms();
}

void store_params_webhook(store_params *w, const webhook *wh, bool insert)
{
	const char *text[] = {wh->id,           wh->trello_id,  wh->id_model,
	                      wh->model_type,   wh->model_name, wh->description,
	                      wh->callback_url, wh->token,      webhook_state_name(wh->state)};
	for (size_t i = 0; i < TH_ARRAY_LEN(text); i++)
		w->ops->text(w, text[i]);
	w->ops->boolean(w, wh->active);
	w->ops->integer(w, wh->consecutive_failures);
	w->ops->integer(w, wh->first_consecutive_fail_at);
	if (insert)
		w->ops->integer(w, created_or_now(wh->created_at));
	w->ops->integer(w, wh->last_event_at);
	w->ops->text(w, wh->token_fp);
}

void store_params_token(store_params *w, const token *t)
{
	w->ops->text(w, t->token);
	w->ops->text(w, t->member);
	w->ops->integer(w, t->expires_at);
	w->ops->text(w, token_state_name(t->state));
	w->ops->integer(w, t->checked_at);
	w->ops->integer(w, created_or_now(t->created_at));
	w->ops->text(w, t->token_fp);
}

void store_params_handler(store_params *w, const handler *h)
{
	const char *text[] = {h->id,    handler_kind_name(h->kind), h->target, h->on, h->model,
	                      h->secret};
	for (size_t i = 0; i < TH_ARRAY_LEN(text); i++)
		w->ops->text(w, text[i]);
	w->ops->boolean(w, h->enabled);
	w->ops->integer(w, created_or_now(h->created_at));
}

void store_params_session(store_params *w, const user_session *us)
{
	w->ops->text(w, us->id_hash);
	w->ops->text(w, us->user);
	w->ops->text(w, us->csrf);
	w->ops->integer(w, us->expires_at);
}

/* Grow @*arr (of @elem-sized items) so it can hold @n + 1; zeroes new room. */
static int grow(char **arr, size_t *cap, size_t n, size_t elem)
{
	if (n < *cap)
		return 0;
	size_t ncap = *cap ? *cap * 2 : 16;
	char *p = realloc(*arr, ncap * elem);
	if (!p)
		return TH_ENOMEM;
	memset(p + *cap * elem, 0, (ncap - *cap) * elem);
	*arr = p;
	*cap = ncap;
	return 0;
}

/* After a row's reader: 0, or the error that made its element incomplete. */
static int read_failed(const store_row *r, th_error *err)
{
	if (r->oom)
		return th_err(err, TH_ENOMEM, "out of memory");
	if (r->bad[0])
		return th_err(err, TH_ESTORE, "%s", r->bad);
	return 0;
}

/* Clear each of the @n elements of @a and free it; see store_int.h. */
void store_rows_free(void *a, size_t n, const store_rowtype *t)
{
	if (!a)
		return;
	for (size_t i = 0; i < n; i++)
		t->clear((char *)a + i * t->size);
	free(a);
}

/* Gather every remaining row of @r; see store_int.h. */
int store_rows_collect(store_row *r, const store_rowtype *t, void **out, size_t *n, th_error *err)
{
	char *a = NULL;
	size_t cnt = 0, cap = 0;
	int ret = 0, rc;
	*out = NULL;
	*n = 0;
	while ((rc = r->ops->next(r, err)) == 1) {
		if (grow(&a, &cap, cnt, t->size) != 0) {
			ret = th_err(err, TH_ENOMEM, "out of memory");
			break;
		}
		r->col = 0;
		r->oom = false;
		r->bad[0] = '\0';
		t->read(r, a + cnt++ * t->size);
		if ((ret = read_failed(r, err)) != 0)
			break;
	}
	if (ret == 0 && rc != 0)
		ret = rc;
	if (ret != 0) {
		store_rows_free(a, cnt, t);
		return ret;
	}
	*out = a;
	*n = cnt;
	return 0;
}

/* Read the next row of @r into @out; see store_int.h. */
int store_rows_first(store_row *r, const store_rowtype *t, void *out, const char *nf, th_error *err)
{
	memset(out, 0, t->size);
	int rc = r->ops->next(r, err);
	if (rc == 0)
		return th_err(err, TH_ENOTFOUND, "%s", nf);
	if (rc != 1)
		return rc;
	r->col = 0;
	r->oom = false;
	r->bad[0] = '\0';
	t->read(r, out);
	int ret = read_failed(r, err);
	if (ret != 0)
		t->clear(out);
	return ret;
}
