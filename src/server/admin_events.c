/* SPDX-License-Identifier: MIT */
/* admin_events.c — the dashboard, the event history and the deliveries pages. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "server/admin.h"
#include "service/handlers.h"
#include "service/service.h"
#include "util/log.h"

#define EVENTS_PAGE 50
#define DELIVERIES_PAGE 200
#define ERROR_SHOWN_MAX 2000

/* The rows of an event listing as a table. @live_max > 0: the newest rows,
 * which the live view (admin.js over /admin/events/stream) extends, keeping
 * at most @live_max; without JavaScript a refresh shows new ones. */
static void events_table(buf *b, const event_row *rows, size_t n, unsigned live_max)
{
	if (live_max)
		buf_puts(b, "<p id=live-status class=\"muted small\" aria-live=polite>New events "
		            "show after a <a href=\"\">refresh</a>.</p>\n");
	if (n == 0) {
		buf_puts(b, "<p class=muted id=no-events>No events yet.</p>\n");
		if (!live_max)
			return;
	}
	buf_printf(b, "<div class=table-wrap%s><table>\n", n ? "" : " hidden");
	buf_puts(b, "<thead><tr><th scope=col>Received</th>"
	            "<th scope=col>Type</th><th scope=col>Summary</th>"
	            "<th scope=col class=hide-sm>Board</th></tr></thead>\n");
	if (live_max)
		buf_printf(b, "<tbody data-live-max=%u>\n", live_max);
	else
		buf_puts(b, "<tbody>\n");
	for (size_t i = 0; i < n; i++)
		admin_event_row(b, &rows[i].ev);
	admin_table_end(b);
}

void admin_event_row(buf *b, const event *ev)
{
	buf_puts(b, "<tr><td class=small>");
	admin_time(b, ev->received_at);
	buf_puts(b, "</td><td class=mono>");
	admin_esc(b, ev->action_type);
	buf_puts(b, "</td><td><a class=summary href=\"/admin/events/");
	admin_urlenc(b, ev->id);
	buf_puts(b, "\">");
	admin_esc(b, ev->summary && *ev->summary ? ev->summary : "(no summary)");
	buf_puts(b, "</a></td><td class=hide-sm>");
	admin_esc(b, ev->board_name);
	buf_puts(b, "</td></tr>\n");
}

/* ---- dashboard --------------------------------------------------------------------------- */

int admin_dashboard(admin_req *r)
{
	svc_ctx *sc = r->sc;
	th_error err = {0, {0}};
	webhook *ws = NULL;
	token *ts = NULL;
	event_row *rows = NULL;
	size_t nw = 0, nt = 0, nr = 0;
	int64_t counts[5] = {0};
	int64_t oldest = 0;
	buf b;
	admin_page_begin(r, &b, "Dashboard", "dashboard");
	if (svc_webhook_rows(sc, &ws, &nw, &err) || svc_token_rows(sc, &ts, &nt, &err) ||
	    svc_delivery_stats(sc, counts, &oldest, &err)) {
		admin_notice(&b, "error", err.msg);
		goto out;
	}
	size_t active = 0, attention = 0;
	for (size_t i = 0; i < nw; i++) {
		if (ws[i].state == WEBHOOK_ACTIVE)
			active++;
		else if (ws[i].state != WEBHOOK_PENDING)
			attention++;
	}
	buf_printf(&b,
	           "<section aria-labelledby=h-stats><h2 id=h-stats>At a glance</h2>\n"
	           "<div class=stats>\n"
	           "<div class=stat><b>%zu</b><a href=\"/admin/webhooks\">webhooks</a> "
	           "(%zu active)</div>\n"
	           "<div class=stat><b>%zu</b>need attention</div>\n"
	           "<div class=stat><b>%zu</b><a href=\"/admin/tokens\">tokens</a></div>\n"
	           "<div class=stat><b>%lld</b><a href=\"/admin/deliveries?status=pending\">"
	           "pending deliveries</a></div>\n"
	           "<div class=stat><b>%lld</b><a href=\"/admin/deliveries?status=failed\">"
	           "failed deliveries</a></div>\n"
	           "<div class=stat><b>%lld</b><a href=\"/admin/deliveries?status=dead\">"
	           "dead deliveries</a></div>\n</div></section>\n",
	           nw, active, attention, nt, (long long)counts[DELIVERY_PENDING],
	           (long long)counts[DELIVERY_FAILED], (long long)counts[DELIVERY_DEAD]);
	admin_activity_section(r, &b);
	admin_deliveries_section(r, &b);
	event_query q = {0};
	q.limit = 10;
	if (svc_event_list(sc, &q, &rows, &nr, &err)) {
		admin_notice(&b, "error", err.msg);
		goto out;
	}
	buf_puts(&b, "<section aria-labelledby=h-recent><h2 id=h-recent>Recent events</h2>\n");
	events_table(&b, rows, nr, 10);
	buf_puts(&b, "<p><a href=\"/admin/events\">All events</a></p></section>\n");
out:
	webhook_list_free(ws, nw);
	token_list_free(ts, nt);
	event_row_list_free(rows, nr);
	admin_page_end(&b);
	return admin_send(r, 200, &b);
}

/* ---- events ------------------------------------------------------------------------------- */

int admin_events(admin_req *r)
{
	svc_ctx *sc = r->sc;
	th_error err = {0, {0}};
	webhook *ws = NULL;
	event_row *rows = NULL;
	size_t nw = 0, nr = 0;
	const char *wh = http_arg(r->req, "webhook");
	const char *type = http_arg(r->req, "type");
	const char *text = http_arg(r->req, "q");
	const char *before = http_arg(r->req, "before");
	int64_t before_seq = 0;
	if (before && *before && num_parse_i64(before, 1, INT64_MAX, &before_seq))
		return admin_error_page(r, 400, "Bad request",
		                        "?before must be a positive number.");
	if ((wh && strlen(wh) > 64) || (type && strlen(type) > 64) || (text && strlen(text) > 200))
		return admin_error_page(r, 400, "Bad request", "A filter is too long.");
	buf b;
	admin_page_begin(r, &b, "Events", "events");
	if (svc_webhook_rows(sc, &ws, &nw, &err)) {
		admin_notice(&b, "error", err.msg);
		goto out;
	}
	/* Filters: a GET form, so the URL can be bookmarked. */
	buf_puts(&b, "<form class=filters method=get action=\"/admin/events\" role=search>\n"
	             "<div><label for=f-webhook>Webhook</label><select id=f-webhook name=webhook>"
	             "<option value=\"\">All webhooks</option>\n");
	for (size_t i = 0; i < nw; i++) {
		buf_puts(&b, "<option value=\"");
		admin_esc(&b, ws[i].id);
		buf_printf(&b, "\"%s>", str_eq(wh, ws[i].id) ? " selected" : "");
		admin_esc(&b, ws[i].model_name ? ws[i].model_name : ws[i].id_model);
		if (ws[i].description && *ws[i].description) {
			buf_puts(&b, " — ");
			admin_esc(&b, ws[i].description);
		}
		buf_puts(&b, "</option>\n");
	}
	buf_puts(&b, "</select></div>\n<div><label for=f-type>Type</label>");
	admin_input(&b, "type=text id=f-type name=type placeholder=\"e.g. updateCard\"", type);
	buf_puts(&b, "</div>\n<div><label for=f-q>Summary contains</label>");
	admin_input(&b, "type=search id=f-q name=q", text);
	buf_puts(&b, "</div>\n<div><button type=submit>Filter</button></div>\n</form>\n");

	event_query q = {0};
	q.webhook_id = wh && *wh ? wh : NULL;
	q.action_type = type && *type ? type : NULL;
	q.text = text && *text ? text : NULL;
	q.before_seq = before_seq;
	q.limit = EVENTS_PAGE;
	if (svc_event_list(sc, &q, &rows, &nr, &err)) {
		admin_notice(&b, "error", err.msg);
		goto out;
	}
	/* live only where every new event belongs: the newest page, unfiltered */
	bool live = !q.webhook_id && !q.action_type && !q.text && !before_seq;
	events_table(&b, rows, nr, live ? EVENTS_PAGE : 0);
	buf_puts(&b, "<nav class=pager aria-label=Pages>");
	if (before_seq)
		buf_puts(&b, "<a class=\"button secondary\" href=\"/admin/events\">Newest</a> ");
	if (nr == EVENTS_PAGE) {
		buf_puts(&b, "<a class=\"button secondary\" rel=next href=\"/admin/events?");
		if (q.webhook_id) {
			buf_puts(&b, "webhook=");
			admin_urlenc(&b, q.webhook_id);
			buf_puts(&b, "&amp;");
		}
		if (q.action_type) {
			buf_puts(&b, "type=");
			admin_urlenc(&b, q.action_type);
			buf_puts(&b, "&amp;");
		}
		if (q.text) {
			buf_puts(&b, "q=");
			admin_urlenc(&b, q.text);
			buf_puts(&b, "&amp;");
		}
		buf_printf(&b, "before=%lld\">Older events</a>", (long long)rows[nr - 1].seq);
	}
	buf_puts(&b, "</nav>\n");
out:
	webhook_list_free(ws, nw);
	event_row_list_free(rows, nr);
	admin_page_end(&b);
	return admin_send(r, 200, &b);
}

/* The deliveries table's header cells after the optional event column. */
#define DELIVERY_HEAD                                                                     \
	"<th scope=col>Handler</th><th scope=col>Status</th><th scope=col>Attempts</th>"  \
	"<th scope=col class=hide-sm>Updated</th><th scope=col>Last error or output</th>" \
	"<th scope=col><span class=muted>Action</span></th>"

/* The deliveries of one event, or of one status, as a table with retry buttons. */
static void deliveries_table(admin_req *r, buf *b, const delivery *ds, size_t n, bool event_col,
                             const char *back)
{
	if (!admin_table_begin(b, n, "No deliveries.",
	                       event_col ? "<th scope=col>Event</th>" DELIVERY_HEAD
	                                 : DELIVERY_HEAD))
		return;
	for (size_t i = 0; i < n; i++) {
		const delivery *d = &ds[i];
		buf_puts(b, "<tr>");
		if (event_col) {
			buf_puts(b, "<td class=mono><a href=\"/admin/events/");
			admin_urlenc(b, d->event_id);
			buf_puts(b, "\">");
			admin_esc(b, d->event_id);
			buf_puts(b, "</a></td>");
		}
		buf_puts(b, "<td class=mono>");
		admin_esc(b, d->handler_id);
		buf_puts(b, "</td><td>");
		admin_badge(b, delivery_status_name(d->status));
		buf_printf(b, "</td><td>%d</td><td class=\"small hide-sm\">", d->attempts);
		admin_time(b, d->updated_at);
		buf_puts(b, "</td><td>");
		if (d->last_error && *d->last_error) {
			buf_puts(b, "<pre class=err>");
			char *cut =
			    str_ndup(d->last_error, strnlen(d->last_error, ERROR_SHOWN_MAX));
			admin_esc(b, cut ? cut : "");
			free(cut);
			buf_puts(b, "</pre>");
		}
		buf_puts(b, "</td><td>");
		if (d->status != DELIVERY_RUNNING) {
			buf_puts(b, "<form class=inline method=post action=\"/admin/deliveries/");
			admin_urlenc(b, d->id);
			buf_puts(b, "/retry\">");
			admin_csrf_field(r, b);
			admin_input(b, "type=hidden name=back", back);
			buf_puts(b, "<button type=submit class=secondary>Retry</button></form>");
		}
		buf_puts(b, "</td></tr>\n");
	}
	admin_table_end(b);
}

/* Pretty-print @payload (escaped) — or show it as received when it is not JSON. */
static void payload_block(buf *b, const event *ev)
{
	buf_puts(b, "<pre class=payload>");
	json_error_t jerr;
	json_t *j = ev->payload ? json_loadb(ev->payload, ev->payload_len, 0, &jerr) : NULL;
	char *pretty = j ? json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
	json_decref(j);
	admin_esc(b, pretty ? pretty : ev->payload);
	free(pretty);
	buf_puts(b, "</pre>\n");
}

static void meta_row(buf *b, const char *label, const char *value, const char *id)
{
	if (!value || !*value)
		return;
	buf_printf(b, "<dt>%s</dt><dd>", label);
	admin_esc(b, value);
	if (id && *id) {
		buf_puts(b, " <span class=\"muted mono\">");
		admin_esc(b, id);
		buf_puts(b, "</span>");
	}
	buf_puts(b, "</dd>\n");
}

int admin_event(admin_req *r, const char *tail)
{
	const char *slash = strchr(tail, '/');
	size_t idlen = slash ? (size_t)(slash - tail) : strlen(tail);
	if (!admin_path_id_ok(tail, idlen))
		return admin_error_page(r, 404, "Not found", "There is no such event.");
	char id[65];
	memcpy(id, tail, idlen);
	id[idlen] = '\0';
	th_error err = {0, {0}};
	if (slash) {
		if (!str_eq(slash, "/replay"))
			return admin_error_page(r, 404, "Not found",
			                        "There is no such page in the admin.");
		if (!r->post) {
			http_response_header(r->res, "Allow", "POST");
			return admin_error_page(r, 405, "Method not allowed",
			                        "Replay takes a POST.");
		}
		size_t n = 0;
		if (handlers_event_replay(r->sc, id, &n, &err))
			return admin_error_page(r, err.code == TH_ENOTFOUND ? 404 : 500,
			                        "Replay failed", err.msg);
		log_info("admin", "%s replayed event %s (%zu deliveries)", r->user, id, n);
		char loc[160];
		str_printf(loc, sizeof loc, "/admin/events/%s?done=event-replayed", id);
		return admin_redirect(r, loc);
	}
	if (!r->get) {
		http_response_header(r->res, "Allow", "GET");
		return admin_error_page(r, 405, "Method not allowed", "This page takes a GET.");
	}
	svc_ctx *sc = r->sc;
	event ev;
	memset(&ev, 0, sizeof ev);
	int rc = svc_event_get(sc, id, &ev, &err);
	if (rc)
		return admin_error_page(r, rc == TH_ENOTFOUND ? 404 : 500,
		                        rc == TH_ENOTFOUND ? "Not found" : "Error",
		                        rc == TH_ENOTFOUND ? "There is no such event." : err.msg);
	delivery *ds = NULL;
	size_t nd = 0;
	buf b;
	admin_page_begin(r, &b, "Event", "events");
	buf_puts(&b, "<p class=\"card summary\">");
	admin_esc(&b, ev.summary && *ev.summary ? ev.summary : "(no summary)");
	buf_puts(&b, "</p>\n<section aria-labelledby=h-meta class=card><h2 id=h-meta>Details</h2>"
	             "<dl class=meta>\n");
	meta_row(&b, "Type", ev.action_type, NULL);
	meta_row(&b, "Action date", ev.action_date, NULL);
	buf_puts(&b, "<dt>Received</dt><dd>");
	admin_time(&b, ev.received_at);
	buf_puts(&b, "</dd>\n");
	meta_row(&b, "By", ev.member, NULL);
	meta_row(&b, "Board", ev.board_name, ev.board_id);
	meta_row(&b, "List", ev.list_name, ev.list_id);
	meta_row(&b, "Card", ev.card_name, ev.card_id);
	meta_row(&b, "Model", ev.model_id, NULL);
	meta_row(&b, "Trello action", ev.action_id, NULL);
	if (ev.webhook_id) {
		buf_puts(&b, "<dt>Webhook</dt><dd><a class=mono href=\"/admin/events?webhook=");
		admin_urlenc(&b, ev.webhook_id);
		buf_puts(&b, "\">");
		admin_esc(&b, ev.webhook_id);
		buf_puts(&b, "</a></dd>\n");
	}
	meta_row(&b, "Event id", ev.id, NULL);
	/* a backfilled event was listed from Trello's actions, not POSTed by it */
	buf_puts(&b, "<dt>Source</dt><dd>");
	if (ev.source == EVENT_FROM_BACKFILL)
		buf_puts(&b, "<span class=\"badge b-backfill\">backfill</span> recovered from "
		             "Trello's actions listing after downtime: it carries no Trello "
		             "signature (no X-Trello-Webhook), and its model is as Trello listed "
		             "it then");
	else
		buf_puts(&b, "delivery (POSTed by Trello, signature verified)");
	buf_puts(&b, "</dd>\n");
	buf_puts(&b,
	         "</dl></section>\n<section aria-labelledby=h-del><h2 id=h-del>Deliveries</h2>\n");
	if (svc_delivery_list(sc, NULL, ev.id, 100, &ds, &nd, &err))
		admin_notice(&b, "error", err.msg);
	else
		deliveries_table(r, &b, ds, nd, false, "event");
	buf_puts(&b, "<form method=post action=\"/admin/events/");
	admin_urlenc(&b, ev.id);
	buf_puts(&b, "/replay\">");
	admin_csrf_field(r, &b);
	buf_puts(&b,
	         "<p><button type=submit>Replay to every matching handler</button></p></form>"
	         "</section>\n<section aria-labelledby=h-payload><h2 id=h-payload>Payload</h2>\n");
	payload_block(&b, &ev);
	buf_puts(&b, "</section>\n");
	delivery_list_free(ds, nd);
	event_clear(&ev);
	admin_page_end(&b);
	return admin_send(r, 200, &b);
}

/* ---- deliveries ---------------------------------------------------------------------------- */

int admin_deliveries(admin_req *r)
{
	static const char *const tabs[] = {"pending", "failed", "dead", "running", "done"};
	const char *status = http_arg(r->req, "status");
	if (!status || !*status)
		status = "failed";
	enum delivery_status st_enum;
	if (delivery_status_parse(status, &st_enum))
		return admin_error_page(r, 400, "Bad request", "Unknown delivery status.");
	status = delivery_status_name(st_enum);
	th_error err = {0, {0}};
	delivery *ds = NULL;
	size_t nd = 0;
	buf b;
	admin_page_begin(r, &b, "Deliveries", "deliveries");
	buf_puts(&b, "<nav aria-label=\"Delivery status\"><ul class=tabs>\n");
	for (size_t i = 0; i < TH_ARRAY_LEN(tabs); i++)
		buf_printf(&b, "<li><a href=\"/admin/deliveries?status=%s\"%s>%s</a></li>\n",
		           tabs[i], str_eq(status, tabs[i]) ? " aria-current=page" : "", tabs[i]);
	buf_puts(&b, "</ul></nav>\n");
	if (svc_delivery_list(r->sc, status, NULL, DELIVERIES_PAGE, &ds, &nd, &err))
		admin_notice(&b, "error", err.msg);
	else
		deliveries_table(r, &b, ds, nd, true, status);
	delivery_list_free(ds, nd);
	admin_page_end(&b);
	return admin_send(r, 200, &b);
}

int admin_delivery_action(admin_req *r, const char *tail)
{
	const char *slash = strchr(tail, '/');
	if (!slash || !str_eq(slash, "/retry") || !admin_path_id_ok(tail, (size_t)(slash - tail)))
		return admin_error_page(r, 404, "Not found", "There is no such page in the admin.");
	if (!r->post) {
		http_response_header(r->res, "Allow", "POST");
		return admin_error_page(r, 405, "Method not allowed", "Retry takes a POST.");
	}
	char id[65];
	memcpy(id, tail, (size_t)(slash - tail));
	id[slash - tail] = '\0';
	th_error err = {0, {0}};
	delivery d;
	memset(&d, 0, sizeof d);
	int rc = svc_delivery_get(r->sc, id, &d, &err);
	if (rc)
		return admin_error_page(r, rc == TH_ENOTFOUND ? 404 : 500, "Retry failed", err.msg);
	if (handlers_delivery_retry(r->sc, id, &err)) {
		delivery_clear(&d);
		return admin_error_page(r, err.code == TH_ENOTFOUND ? 404 : 409, "Retry failed",
		                        err.msg);
	}
	log_info("admin", "%s retried delivery %s", r->user, id);
	char loc[200];
	const char *back = admin_field(r, "back");
	enum delivery_status tab;
	if (str_eq(back, "event"))
		str_printf(loc, sizeof loc, "/admin/events/%s?done=delivery-retried", d.event_id);
	else if (back && !delivery_status_parse(back, &tab))
		str_printf(loc, sizeof loc, "/admin/deliveries?status=%s&done=delivery-retried",
		           delivery_status_name(tab));
	else
		str_copy(loc, sizeof loc, "/admin/deliveries?done=delivery-retried");
	delivery_clear(&d);
	return admin_redirect(r, loc);
}
