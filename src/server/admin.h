/* SPDX-License-Identifier: MIT */
/*
 * admin.h — private header of the web admin (src/server/admin*.c).
 *
 *   admin.c           routing, sign-in, sessions, CSRF (the password check,
 *                     the login throttle and the session rows are the
 *                     service layer's: service/users.c)
 *   admin_html.c      page layout, escaping helpers, form parsing, headers,
 *                     the stylesheet and script served under /admin/static/
 *   admin_events.c    dashboard, events, event detail, deliveries
 *   admin_webhooks.c  webhooks, tokens (authorize flow), sync
 *   admin_live.c      the live view: /admin/events/stream (Server-Sent Events)
 *
 * Every page is rendered server-side into a bounded buffer; every piece of
 * text that came from Trello or a user goes through admin_esc(). Handlers
 * get an admin_req describing the request and the signed-in user.
 * Not thread-shared: one admin_req per request.
 */
#ifndef TH_ADMIN_H
#define TH_ADMIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "http/http.h"
#include "service/ctx.h"

#define ADMIN_MAX_FIELDS 64
#define ADMIN_PAGE_MAX ((size_t)8 << 20) /* largest page we render */
#define ADMIN_SESSION_COOKIE "trellohook_session"
#define ADMIN_LOGIN_COOKIE "trellohook_login"
#define ADMIN_USER_MAX 64
/* the most an admin request waits for Trello, all its calls together */
#define ADMIN_TRELLO_BUDGET_MS 10000

/* One admin request as the page functions see it. */
typedef struct admin_req {
	svc_ctx *sc;
	http_request *req;
	http_response *res;
	const char *rest; /* path after "/admin" */
	bool get;         /* GET or HEAD */
	bool post;
	/* the signed-in user (empty when none) */
	char user[ADMIN_USER_MAX + 1];
	char csrf[64];    /* the session's CSRF token */
	char id_hash[65]; /* SHA-256 hex of the session id */
	/* decoded application/x-www-form-urlencoded body (POST only) */
	http_pair form[ADMIN_MAX_FIELDS];
	size_t nform;
	char *form_mem; /* owns the strings of form[] */
} admin_req;

/* ---- admin_charts.c ------------------------------------------------------------ */

/* The dashboard's activity charts (events per hour for 24 h, per day for 30
 * days, stacked by action type), from the hourly rollup; an error is shown
 * as a notice in the section. */
void admin_activity_section(admin_req *r, buf *b);
/* The dashboard's deliveries: attempts per hour by outcome (24 h) and each
 * handler's success rate and p50/p95 run time, from the delivery rollup. */
void admin_deliveries_section(admin_req *r, buf *b);
/* The webhooks page's activity: 7 days of hourly counts per webhook, into
 * @a (the caller clears it with svc_activity_clear()). */
struct svc_activity;
int admin_webhook_activity_read(admin_req *r, struct svc_activity *a, th_error *err);
/* One webhook's activity cell: a 24-hour sparkline (row number @row makes
 * its id), "last event N minutes ago", and the warning of the silence rule
 * (service/activity.h, svc_activity_silent). @a NULL: no sparkline. */
void admin_webhook_activity_cell(buf *b, const struct svc_activity *a, const webhook *w,
                                 size_t row);

/* ---- admin_html.c -------------------------------------------------------------- */

/* Append @s HTML-escaped; NULL appends nothing. Returns 0 or TH_ETOOBIG. */
int admin_esc(buf *b, const char *s);
/* A state shown as a coloured badge ("needs_token" reads "needs new token"). */
void admin_badge(buf *b, const char *state);
/* Is @s[0..n) an id as we make them (letters, digits, '-', '_'; 1..64)? Path
 * segments that are not are refused before any lookup. */
bool admin_path_id_ok(const char *s, size_t n);
/* Append @s percent-encoded for a query-string value. */
int admin_urlenc(buf *b, const char *s);
/* Append a <time> element for @ms (or "never" for 0). */
int admin_time(buf *b, int64_t ms);
/* Append a masked secret (e.g. a token), escaped. */
int admin_masked(buf *b, const char *secret);
/* Start a page: doctype, head, skip link, header with navigation (when
 * signed in, with the sign-out form), <main>, the <h1> @title and, when the
 * query has ?done=CODE, the matching notice. @nav names the active section. */
void admin_page_begin(admin_req *r, buf *b, const char *title, const char *nav);
/* Close <main>, the footer and the document. */
void admin_page_end(buf *b);
/* The hidden CSRF field of a form. */
void admin_csrf_field(admin_req *r, buf *b);
/* A notice paragraph: @kind "ok" or "error"; @msg escaped. */
void admin_notice(buf *b, const char *kind, const char *msg);
/* One admin table of @n rows, with the header cells @head (`<th scope=col>…`):
 * writes its opening up to <tbody> and returns true; or, when @n is 0, writes
 * `<p class=muted>@empty</p>` (nothing when @empty is NULL; @empty is HTML,
 * not escaped) and returns false. The rows follow, then admin_table_end(). */
/* `<input @attrs value="@value">`, the value HTML-escaped (NULL: empty). */
void admin_input(buf *b, const char *attrs, const char *value);
bool admin_table_begin(buf *b, size_t n, const char *empty, const char *head);
void admin_table_end(buf *b);
/* Send @b as an HTML page with the admin's security headers. Frees @b. */
int admin_send(admin_req *r, int status, buf *b);
/* Set the admin's security headers on @res (CSP, framing, caching, ...). */
void admin_security_headers(http_response *res);
/* A 303 redirect to @location (a path we built). */
int admin_redirect(admin_req *r, const char *location);
/* A full error page with @status, @title and @msg (escaped). */
int admin_error_page(admin_req *r, int status, const char *title, const char *msg);
/* Serve /admin/static/NAME; false when there is no such file. */
bool admin_static(admin_req *r, const char *name);
/* Parse the request body as a form into r->form. Returns 0, or TH_EINVAL
 * for a malformed body (bad escape, NUL, invalid UTF-8, too many fields). A
 * body of another content type yields no fields. */
int admin_form_parse(admin_req *r);
/* A decoded form field, or NULL. */
const char *admin_field(const admin_req *r, const char *name);
/* Release what admin_form_parse allocated. */
void admin_req_clear(admin_req *r);
/* The value of cookie @name from the request's Cookie headers into @out;
 * false when absent or longer than @outsz - 1. */
bool admin_cookie(const http_request *req, const char *name, char *out, size_t outsz);
/* The session of @req's cookie (admin.c): true and @id_hash set when it is
 * signed in (this slides the session's expiry, as every page does). */
bool admin_session_check(svc_ctx *sc, http_request *req, char id_hash[65]);
/* Hex SHA-256 of @s (65 bytes with the terminator). */
void admin_sha256_hex(const char *s, size_t len, char out[65]);
/* A short fingerprint of a token for forms (never the token itself):
 * the first 16 hex digits of its SHA-256. */
void admin_token_fp(const char *tok, char out[17]);

/* ---- admin_events.c ------------------------------------------------------------- */

int admin_dashboard(admin_req *r);
/* One event as a row of the event tables (also what the live view pushes). */
void admin_event_row(buf *b, const event *ev);
int admin_events(admin_req *r);
/* /admin/events/{id} and /admin/events/{id}/replay; @tail is after "/events/". */
int admin_event(admin_req *r, const char *tail);
int admin_deliveries(admin_req *r);
/* POST /admin/deliveries/{id}/retry; @tail is after "/deliveries/". */
int admin_delivery_action(admin_req *r, const char *tail);

/* ---- admin_webhooks.c ----------------------------------------------------------- */

/* /admin/webhooks... ; @tail is after "/webhooks" ("" or "/..."). */
int admin_webhooks(admin_req *r, const char *tail);
/* /admin/tokens... ; @tail is after "/tokens". */
int admin_tokens(admin_req *r, const char *tail);
int admin_sync(admin_req *r);

#endif
