/* SPDX-License-Identifier: MIT */
/*
 * store_query.c — the listings whose SQL depends on their filters (events,
 * an export page, deliveries), built once for both backends: a list of
 * parts, each a piece of SQL before one value, written with the backend's
 * placeholders; the backend's dialect (store_int.h) runs the statement with
 * the values in the same order.
 */
#include "store/store_int.h"

/* One piece of a statement: SQL, then the placeholder of one value, then
 * @after (when set); a part not @on is left out. */
typedef struct part {
	bool on;
	const char *sql;
	const char *after;
	bool is_text;
	const char *text; /* not copied */
	int64_t num;
} part;

enum { PARTS_MAX = 8 };

static part part_text(bool on, const char *sql, const char *v, const char *after)
{
	return (part){.on = on, .sql = sql, .after = after, .is_text = true, .text = v};
}

static part part_int(bool on, const char *sql, int64_t v)
{
	return (part){.on = on, .sql = sql, .num = v};
}

typedef struct parts {
	const part *ps;
	size_t n;
} parts;

/* The values of the parts that are on, in order (a store_binder). */
static void bind_parts(store_params *w, const void *ctx)
{
	const part *ps = ((const parts *)ctx)->ps;
	size_t n = ((const parts *)ctx)->n;
	for (size_t i = 0; i < n; i++) {
		if (!ps[i].on)
			continue;
		if (ps[i].is_text)
			w->ops->text(w, ps[i].text);
		else
			w->ops->integer(w, ps[i].num);
	}
}

/* @head, then the parts that are on with numbered placeholders in @d's
 * style, run by @d as @rt rows. TH_ETOOBIG when the SQL does not fit. */
static int run_parts(store *st, const store_dialect *d, const char *head, const part *ps, size_t n,
                     const store_rowtype *rt, void **out, size_t *nout, const char *what,
                     th_error *err)
{
	*out = NULL;
	*nout = 0;
	buf sql;
	buf_init(&sql, 4096);
	int e = buf_puts(&sql, head), k = 0;
	for (size_t i = 0; !e && i < n; i++)
		if (ps[i].on)
			e = buf_printf(&sql, "%s%c%d%s", ps[i].sql, d->style, ++k,
			               ps[i].after ? ps[i].after : "");
	parts x = {ps, n};
	int ret = e ? th_err(err, TH_ETOOBIG, "%s: the statement is too long", what)
	            : d->list(st, sql.data, bind_parts, &x, rt, out, nout, what, err);
	buf_free(&sql);
	return ret;
}

int store_event_list(store *st, const event_query *q, event_row **out, size_t *n, th_error *err)
{
	const store_dialect *d = st->ops->dialect;
	bool text = q->text && *q->text;
	buf pat;
	buf_init(&pat, 4096);
	if (text && store_like_pattern(&pat, q->text) != 0) {
		buf_free(&pat);
		*out = NULL;
		*n = 0;
		return th_err(err, TH_ETOOBIG, "event filter text is too long");
	}
	size_t limit = store_list_limit(q->limit, STORE_EVENT_LIST_DEFAULT);
	part ps[PARTS_MAX] = {
	    part_text(q->webhook_id != NULL, " AND webhook_id = ", q->webhook_id, NULL),
	    part_text(q->action_type != NULL, " AND action_type = ", q->action_type, NULL),
	    part_text(text, d->like, pat.data, " ESCAPE '\\'"),
	    part_int(q->after_seq > 0, " AND seq > ", q->after_seq),
	    part_int(q->before_seq > 0, " AND seq < ", q->before_seq),
	    part_int(true,
	             q->oldest_first ? " ORDER BY seq ASC LIMIT " : " ORDER BY seq DESC LIMIT ",
	             (int64_t)limit),
	};
	int ret = run_parts(st, d, "SELECT " EVENT_COLS " FROM events WHERE 1 = 1", ps, PARTS_MAX,
	                    &store_rt_event_row, (void **)out, n, "listing events", err);
	buf_free(&pat);
	return ret;
}

int store_event_page(store *st, const event_page_query *q, event_row **out, size_t *n,
                     th_error *err)
{
	*out = NULL;
	*n = 0;
	if (q->limit < 1 || q->limit > STORE_PAGE_MAX)
		return th_err(err, TH_EINVAL, "event page: 1 to %d events", STORE_PAGE_MAX);
	part ps[PARTS_MAX] = {
	    part_int(true, " WHERE seq > ", q->after_seq),
	    part_int(true, " AND seq <= ", q->upto_seq),
	    part_text(q->webhook_id != NULL, " AND webhook_id = ", q->webhook_id, NULL),
	    part_text(q->action_type != NULL, " AND action_type = ", q->action_type, NULL),
	    part_int(q->since_ms > 0, " AND received_at >= ", q->since_ms),
	    part_int(q->until_ms > 0, " AND received_at < ", q->until_ms),
	    part_int(true, " ORDER BY seq LIMIT ", (int64_t)q->limit),
	};
	return run_parts(st, st->ops->dialect,
	                 "SELECT " EVENT_COLS ", " EVENT_PAYLOAD_COLS " FROM events", ps, PARTS_MAX,
	                 &store_rt_event_row_full, (void **)out, n, "reading events", err);
}

int store_delivery_list(store *st, const char *status, const char *event_id, size_t limit,
                        delivery **out, size_t *n, th_error *err)
{
	const store_dialect *d = st->ops->dialect;
	*out = NULL;
	*n = 0;
	if (store_check_status_filter(status, err) != 0)
		return TH_EINVAL;
	limit = store_list_limit(limit, STORE_DELIVERY_LIST_DEFAULT);
	part ps[PARTS_MAX] = {
	    part_text(status != NULL, " AND d.status = ", status, NULL),
	    part_text(event_id != NULL, " AND d.event_id = ", event_id, NULL),
	    part_int(true, d->delivery_order, (int64_t)limit),
	};
	return run_parts(st, d, "SELECT " DELIVERY_COLS " FROM deliveries d WHERE 1 = 1", ps,
	                 PARTS_MAX, &store_rt_delivery, (void **)out, n, "listing deliveries", err);
}
