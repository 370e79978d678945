/* SPDX-License-Identifier: MIT */
/* backfill.c — see backfill.h. */
#include <stdlib.h>
#include <string.h>

#include "service/backfill.h"
#include "service/service.h"
#include "util/log.h"

#define COMPONENT "backfill"
/* Without a mark a pass starts where the webhook was created, less this
 * much: Trello's clock and ours may differ by a little. */
#define CREATED_SKEW_MS 60000
/* Rounds of "store the oldest BACKFILL_MAX_HELD, list again" in one pass. */
#define MAX_ROUNDS 1000

/* The actions one round holds, newest first (as listed). */
typedef struct held {
	trello_action *v;
	size_t len, cap;
	bool truncated; /* newer ones were dropped: list again after storing */
} held;

static void held_clear(held *h)
{
	trello_action_list l = {h->v, h->len};
	trello_action_list_clear(&l);
	memset(h, 0, sizeof *h);
}

/* Move the items of @page to the end of @h (older than what it holds); when
 * over @max, drop the newest. */
static int held_take(held *h, trello_action_list *page, size_t max, th_error *err)
{
	if (!page->len)
		return 0; /* an empty page may have no array at all */
	if (h->len + page->len > h->cap) {
		size_t cap = h->cap ? h->cap : 256;
		while (cap < h->len + page->len)
			cap *= 2;
		trello_action *v = realloc(h->v, cap * sizeof *v);
		if (!v)
			return th_err(err, TH_ENOMEM, "out of memory holding listed actions");
		h->v = v;
		h->cap = cap;
	}
	memcpy(h->v + h->len, page->items, page->len * sizeof *page->items);
	h->len += page->len;
	free(page->items);
	page->items = NULL;
	page->len = 0;
	if (h->len > max) {
		size_t drop = h->len - max;
		/* free the dropped ones' strings, not the array */
		for (size_t i = 0; i < drop; i++)
			TH_FREE_ALL(h->v[i].id, h->v[i].type, h->v[i].date, h->v[i].json);
		memmove(h->v, h->v + drop, (h->len - drop) * sizeof *h->v);
		h->len -= drop;
		h->truncated = true;
	}
	return 0;
}

int backfill_payload(const char *action, const char *model, char **out, size_t *len, th_error *err)
{
	buf b;
	buf_init(&b, BUF_MAX_DEFAULT);
	/* Trello's delivery body is {"action": ..., "model": ...}; both parts are
	 * compact JSON objects already checked by the trello client. */
	buf_puts(&b, "{\"action\":");
	buf_puts(&b, action);
	buf_puts(&b, ",\"model\":");
	buf_puts(&b, model);
	buf_putc(&b, '}');
	int rc = buf_status(&b);
	*out = rc ? NULL : buf_detach(&b, len);
	if (!*out) {
		buf_free(&b);
		return th_err(err, rc ? rc : TH_ENOMEM, "cannot build a backfilled payload: %s",
		              rc == TH_ETOOBIG ? "too big" : "out of memory");
	}
	return 0;
}

int svc_backfill_mark(svc_ctx *sc, const char *id, backfill_mark *out, th_error *err)
{
	return store_backfill_mark_get(sc->st, id, out, err);
}

/* ---- one pass ------------------------------------------------------------------------ */

/* Everything one pass works with. */
typedef struct pass {
	svc_ctx *sc;
	trello_client *tc;
	const backfill_opts *o;
	webhook w;
	enum trello_model_type type;
	backfill_mark prev; /* the mark as the pass found it (zeroed: none) */
	char *model;        /* the model's JSON */
	char since[32];     /* the current lower bound (date or id) */
	int64_t since_ms;
	backfill_result *r;
	size_t stored_total; /* of the held actions, how many are stored (progress) */
} pass;

static const char *kind_name(enum trello_model_type t)
{
	return trello_model_type_name(t);
}

/* An error of Trello's, made a sentence with what to do. */
static int trello_failed(pass *p, const char *what, const trello_error *te, th_error *err)
{
	const char *hint = "";
	if (trello_error_is_token_dead(te))
		hint = " (the webhook's token needs replacing: trellohook token add NEW_TOKEN, "
		       "then trellohook sync)";
	else if (te->kind == TRELLO_ERR_NOT_FOUND)
		hint = " (the model is gone on Trello, or the token can no longer see it)";
	else if (te->kind == TRELLO_ERR_RATE_LIMITED)
		hint = " (Trello's rate limit; the next pass tries again)";
	else if (te->kind == TRELLO_ERR_UNREACHABLE || te->kind == TRELLO_ERR_SERVER)
		hint = " (the next pass tries again)";
	return th_err(err, te->th.code ? te->th.code : TH_ETRELLO, "%s %s: %s%s", what,
	              kind_name(p->type), te->th.msg, hint);
}

/* Is @s a real date as Trello writes them (YYYY-MM-DDThh:mm:ss[.fff]Z)?
 * The parser normalises a 30 February into March; a date that does not
 * read back the same is refused. */
static bool date_ok(const char *s, int64_t *ms)
{
	char back[32];
	if (strlen(s) < 20 || time_parse_iso(s, ms))
		return false;
	time_format_iso(*ms, back);
	return memcmp(back, s, 19) == 0;
}

/* The lower bound of the listing: the mark, --since, or the creation of the
 * webhook, never older than now - TRELLOHOOK_BACKFILL_MAX_AGE. */
static int choose_since(pass *p, th_error *err)
{
	int64_t now = p->o->now_ms ? p->o->now_ms : time_now_ms();
	int64_t horizon = now - p->sc->cfg->backfill_max_age_ms;
	const char *given = p->o->since;
	const char *id = NULL;
	int64_t ms;
	if (given) {
		if (str_is_trello_id(given)) {
			char hex[9];
			memcpy(hex, given, 8);
			hex[8] = '\0';
			ms =
			    (int64_t)strtoull(hex, NULL, 16) * 1000; /* 8 hex digits: no overflow */
			id = given;
		} else if (!date_ok(given, &ms)) {
			return th_err(
			    err, TH_EINVAL,
			    "--since must be a date such as 2026-11-20T09:00:00Z or a Trello "
			    "action id (24 hex), not \"%.64s\"",
			    given);
		}
	} else if (p->prev.last_action_id) {
		id = p->prev.last_action_id;
		ms = p->prev.last_action_at;
	} else {
		ms = p->w.created_at - CREATED_SKEW_MS;
	}
	if (ms < horizon) {
		/* an explicit bound older than the horizon is clamped, and said */
		p->r->clamped = given || id;
		ms = horizon;
		id = NULL;
	}
	p->since_ms = ms;
	if (id)
		str_printf(p->since, sizeof p->since, "%s", id);
	else
		time_format_iso(ms, p->since);
	str_printf(p->r->since, sizeof p->r->since, "%s", p->since);
	return 0;
}

/* List every action newer than p->since into @h, newest first, paging back
 * with `before`; at most max_held are kept (the oldest). */
static int list_round(pass *p, held *h, th_error *err)
{
	int limit = p->o->page_size > 0 && p->o->page_size <= TRELLO_ACTIONS_LIMIT_MAX
	                ? p->o->page_size
	                : TRELLO_ACTIONS_LIMIT_MAX;
	size_t max = p->o->max_held ? p->o->max_held : BACKFILL_MAX_HELD;
	char before[32] = "";
	int64_t before_ms = INT64_MAX;
	for (size_t page = 0; page < BACKFILL_MAX_PAGES; page++) {
		trello_actions_query q = {.since = p->since,
		                          .before = before[0] ? before : NULL,
		                          .filter = NULL,
		                          .limit = limit,
		                          .page = 0};
		trello_action_list l = {NULL, 0};
		trello_error te;
		memset(&te, 0, sizeof te);
		if (trello_list_actions(p->tc, p->w.token, p->type, p->w.id_model, &q, &l, &te))
			return trello_failed(p, "listing the actions of the", &te, err);
		/* Trello lists newest first, each page older than `before`: a page
		 * that goes forward, repeats `before` or reaches past since would
		 * make us loop or store what we did not ask for. */
		for (size_t i = 0; i < l.len; i++) {
			const trello_action *a = &l.items[i];
			int64_t prev_ms = i ? l.items[i - 1].date_ms : before_ms;
			if (a->date_ms > prev_ms || (before[0] && str_eq(a->id, before)) ||
			    a->date_ms < p->since_ms - 1000) {
				trello_action_list_clear(&l);
				return th_err(
				    err, TH_ETRELLO,
				    "Trello sent an unexpected answer: the actions listing of "
				    "the %s is out of order or outside since/before (action "
				    "%s); the pass ends here",
				    kind_name(p->type), a->id);
			}
		}
		size_t got = l.len;
		if (got) {
			str_printf(before, sizeof before, "%s", l.items[got - 1].id);
			before_ms = l.items[got - 1].date_ms;
		}
		int rc = held_take(h, &l, max, err);
		trello_action_list_clear(&l);
		if (rc)
			return rc;
		p->r->listed += got;
		if (p->o->progress)
			p->o->progress(p->o->progress_ctx, p->r->listed, 0);
		if ((int)got < limit)
			return 0;
	}
	return th_err(err, TH_ETRELLO,
	              "Trello listed more than %d pages of actions since %s; the pass ends here",
	              BACKFILL_MAX_PAGES, p->since);
}

/* Save where the pass stands: @last (NULL: keep) the newest action stored,
 * @error (NULL: none). A pass that recovered nothing keeps the gap the last
 * one found, so `webhook show` still tells of it. */
static void save_mark(pass *p, const trello_action *last, const char *error)
{
	backfill_mark m = {0};
	m.webhook_id = p->w.id;
	m.last_action_id = last ? last->id : NULL;
	m.last_action_at = last ? last->date_ms : 0;
	m.model_kind = (char *)kind_name(p->type);
	m.error = (char *)error;
	if (p->r->recovered) {
		m.recovered = (int64_t)p->r->recovered;
		m.gap_from = p->r->gap_from;
		m.gap_to = p->r->gap_to;
	} else {
		m.recovered = p->prev.recovered;
		m.gap_from = p->prev.gap_from;
		m.gap_to = p->prev.gap_to;
	}
	m.updated_at = time_now_ms();
	th_error e = {0, {0}};
	if (store_backfill_mark_put(p->sc->st, &m, &e))
		log_error(COMPONENT, "webhook %s: cannot save the backfill mark: %s", p->w.id,
		          e.msg);
}

/* Store @n actions, oldest first (@v[0] is the oldest), in ONE transaction,
 * then move the mark to the newest of them. */
static int store_chunk(pass *p, trello_action *const *v, size_t n, th_error *err)
{
	event *evs[BACKFILL_CHUNK] = {0};
	enum store_put res[BACKFILL_CHUNK];
	int rc = 0;
	size_t made = 0;
	for (; made < n && !rc; made++) {
		char *payload = NULL;
		size_t len = 0;
		event *ev = calloc(1, sizeof *ev);
		if (!ev) {
			rc = th_err(err, TH_ENOMEM, "out of memory");
			break;
		}
		evs[made] = ev;
		rc = backfill_payload(v[made]->json, p->model, &payload, &len, err);
		if (!rc) {
			/* the parser every delivery goes through: same checks, same summary */
			th_error perr = {0, {0}};
			rc = event_parse(ev, payload, len, &perr);
			if (rc)
				th_err(err, TH_ETRELLO,
				       "Trello sent an unexpected answer: listed action %s is not "
				       "a Trello action: %s",
				       v[made]->id, perr.msg);
		}
		free(payload);
		if (!rc) {
			ev->webhook_id = str_dup(p->w.id);
			ev->source = EVENT_FROM_BACKFILL;
			if (!ev->model_id)
				ev->model_id = str_dup(p->w.id_model);
			if (!ev->webhook_id || !ev->model_id)
				rc = th_err(err, TH_ENOMEM, "out of memory");
		}
	}
	if (!rc)
		rc = svc_events_store(p->sc, evs, n, res, err);
	for (size_t i = 0; !rc && i < n; i++)
		if (res[i] == STORE_PUT_FAILED) /* the mark stays before this chunk */
			rc = th_err(err, TH_ESTORE, "the store could not take action %s", v[i]->id);
	if (!rc) {
		size_t fresh = 0;
		const event *fresh_evs[BACKFILL_CHUNK];
		for (size_t i = 0; i < n; i++) {
			if (res[i] == STORE_PUT_NEW) {
				fresh_evs[fresh++] = evs[i];
				if (!p->r->gap_from)
					p->r->gap_from = v[i]->date_ms;
				p->r->gap_to = v[i]->date_ms;
			} else {
				p->r->duplicates++;
			}
		}
		p->r->recovered += fresh;
		metrics *m = p->sc->m;
		if (m) {
			atomic_fetch_add_explicit(&m->events_backfilled, fresh,
			                          memory_order_relaxed);
			atomic_fetch_add_explicit(&m->events_stored, fresh, memory_order_relaxed);
		}
		/* committed: only now may the mark move past these */
		save_mark(p, v[n - 1], NULL);
		if (fresh && p->sc->on_events)
			p->sc->on_events(p->sc->on_events_ctx, fresh_evs, fresh);
	}
	for (size_t i = 0; i < made; i++) {
		if (evs[i]) {
			event_clear(evs[i]);
			free(evs[i]);
		}
	}
	return rc;
}

/* Store what a round holds, oldest first, chunk by chunk. */
static int store_round(pass *p, held *h, th_error *err)
{
	trello_action *chunk[BACKFILL_CHUNK];
	size_t i = h->len, total = h->len, done = 0;
	while (i > 0) {
		if (p->o->cancel && atomic_load(p->o->cancel))
			return th_err(err, TH_EUNAVAIL, "stopped (serve is shutting down)");
		size_t n = 0;
		while (i > 0 && n < BACKFILL_CHUNK)
			chunk[n++] = &h->v[--i];
		int rc = store_chunk(p, chunk, n, err);
		if (rc)
			return rc;
		done += n;
		log_debug(COMPONENT,
		          "webhook %s: %zu of %zu listed action(s) committed, mark at %s", p->w.id,
		          done, total, chunk[n - 1]->id);
		if (p->o->progress)
			p->o->progress(p->o->progress_ctx, done, total);
	}
	return 0;
}

/* Can webhook @w be backfilled, and as what kind of model? */
static int check_webhook(pass *p, th_error *err)
{
	const webhook *w = &p->w;
	if (w->state == WEBHOOK_REMOVING)
		return th_err(err, TH_EINVAL, "webhook %s is being removed; nothing to backfill",
		              w->id);
	if (w->state == WEBHOOK_PENDING || !w->trello_id)
		return th_err(err, TH_EINVAL,
		              "webhook %s is not registered on Trello yet (run trellohook sync)",
		              w->id);
	if (!w->token || !w->id_model)
		return th_err(err, TH_EINVAL, "webhook %s has no token or model", w->id);
	if (str_eq(w->model_type, "board"))
		p->type = TRELLO_MODEL_BOARD;
	else if (str_eq(w->model_type, "list"))
		p->type = TRELLO_MODEL_LIST;
	else if (str_eq(w->model_type, "card"))
		p->type = TRELLO_MODEL_CARD;
	else
		return th_err(err, TH_EINVAL,
		              "webhook %s watches a %s: backfill covers boards, lists and cards",
		              w->id, w->model_type ? w->model_type : "model of unknown kind");
	return 0;
}

/* The pass proper, once the webhook is loaded and checked. */
static int run_pass(pass *p, th_error *err)
{
	int rc;
	/* debug: every health pass runs one per webhook; what it finds is info */
	log_debug(COMPONENT, "webhook %s: backfill pass: listing the %s's actions since %s%s",
	          p->w.id, kind_name(p->type), p->since,
	          p->r->clamped ? " (TRELLOHOOK_BACKFILL_MAX_AGE)" : "");
	trello_error te;
	memset(&te, 0, sizeof te);
	if (trello_get_model_json(p->tc, p->w.token, p->type, p->w.id_model, &p->model, &te))
		return trello_failed(p, "fetching the", &te, err);
	for (int round = 0; round < MAX_ROUNDS; round++) {
		held h = {0};
		rc = list_round(p, &h, err);
		if (!rc)
			rc = store_round(p, &h, err);
		bool again = !rc && h.truncated && h.len;
		if (again) {
			/* go on from the newest action stored */
			str_printf(p->since, sizeof p->since, "%s", h.v[0].id);
			p->since_ms = h.v[0].date_ms;
		}
		held_clear(&h);
		if (!again)
			return rc;
	}
	return th_err(err, TH_EUNAVAIL, "more actions than %d rounds could store; run it again",
	              MAX_ROUNDS);
}

int svc_backfill_webhook(svc_ctx *sc, trello_client *tc, const char *id, const backfill_opts *o,
                         backfill_result *out, th_error *err)
{
	backfill_opts defaults = BACKFILL_OPTS_INIT;
	th_error lerr = {0, {0}};
	if (!err)
		err = &lerr;
	memset(out, 0, sizeof *out);
	pass p = {.sc = sc, .tc = tc, .o = o ? o : &defaults, .r = out};
	int rc = svc_webhook_get(sc, id, &p.w, err);
	if (rc)
		return rc;
	rc = check_webhook(&p, err);
	if (!rc) {
		th_error e = {0, {0}};
		int mrc = store_backfill_mark_get(sc->st, id, &p.prev, &e);
		if (mrc && mrc != TH_ENOTFOUND)
			rc = th_err(err, mrc, "%s", e.msg);
	}
	if (!rc)
		rc = choose_since(&p, err); /* a bad --since is the caller's, not the mark's */
	bool ran = false;
	if (!rc) {
		ran = true;
		rc = run_pass(&p, err);
	}
	if (ran) {
		if (rc) {
			str_printf(out->error, sizeof out->error, "%s", err->msg);
			log_warn(COMPONENT,
			         "webhook %s: backfill pass ended after %zu recovered: %s", id,
			         out->recovered, err->msg);
		} else if (out->recovered) {
			log_info(COMPONENT,
			         "webhook %s: recovered %zu missed action(s) (%zu listed since %s, "
			         "%zu already stored)",
			         id, out->recovered, out->listed, out->since, out->duplicates);
		}
		save_mark(&p, NULL, rc ? err->msg : NULL);
	}
	free(p.model);
	backfill_mark_clear(&p.prev);
	webhook_clear(&p.w);
	return rc;
}

int svc_backfill_request(svc_ctx *sc, const char *id, th_error *err)
{
	webhook w = {0};
	int rc = svc_webhook_get(sc, id, &w, err);
	if (!rc) {
		pass p = {.w = w};
		rc = check_webhook(&p, err);
	}
	webhook_clear(&w);
	if (!rc && !sc->backfill_request)
		rc =
		    th_err(err, TH_EUNAVAIL,
		           "backfill runs in serve with TRELLO_API_KEY set; from the command line: "
		           "trellohook webhook backfill %s",
		           id);
	if (!rc)
		rc = sc->backfill_request(sc->backfill_ctx, id, err);
	if (!rc)
		log_info(COMPONENT, "webhook %s: backfill asked for", id);
	return rc;
}

size_t svc_backfill_after_enable(svc_ctx *sc, trello_client *tc, const char *id)
{
	th_error err = {0, {0}};
	if (sc->backfill_request) {
		if (sc->backfill_request(sc->backfill_ctx, id, &err))
			log_warn(COMPONENT, "webhook %s: cannot queue a backfill: %s", id, err.msg);
		return 0;
	}
	backfill_result r;
	(void)svc_backfill_webhook(sc, tc, id, NULL, &r, &err);
	return r.recovered;
}

size_t svc_backfill_all(svc_ctx *sc, trello_client *tc, const atomic_bool *cancel)
{
	webhook *ws = NULL;
	size_t n = 0, total = 0;
	th_error err = {0, {0}};
	if (svc_webhook_rows(sc, &ws, &n, &err)) {
		log_warn(COMPONENT, "cannot list webhooks to backfill: %s", err.msg);
		return 0;
	}
	for (size_t i = 0; i < n && !(cancel && atomic_load(cancel)); i++) {
		/* only what Trello delivers to: a disabled webhook was either paused
		 * on purpose or waits for sync / the admin to enable it again, which
		 * then backfills it */
		if (ws[i].state != WEBHOOK_ACTIVE || !ws[i].active || !ws[i].trello_id)
			continue;
		backfill_opts o = BACKFILL_OPTS_INIT;
		backfill_result r;
		o.cancel = cancel;
		/* a failure is logged and kept in the mark; what it stored counts */
		(void)svc_backfill_webhook(sc, tc, ws[i].id, &o, &r, &err);
		total += r.recovered;
	}
	webhook_list_free(ws, n);
	return total;
}
