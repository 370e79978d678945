/* SPDX-License-Identifier: MIT */
/* admin_html.c — layout, escaping, forms, cookies and static files of the admin. */
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "server/admin.h"
#include "util/log.h"

/* ---- static files ------------------------------------------------------------------ */

static const char admin_css[] =
    ":root{--bg:#f6f7f9;--fg:#1d2330;--muted:#5b6474;--line:#d9dde4;--card:#fff;"
    "--accent:#0b5cad;--accent-fg:#fff;--ok:#17663a;--okbg:#e3f4e9;--err:#9b1c1c;--errbg:#fde8e8;"
    "--warn:#7a4b00;--warnbg:#fff3d6;font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif}\n"
    "*{box-sizing:border-box}\n"
    "body{margin:0;background:var(--bg);color:var(--fg);line-height:1.45;font-size:15px}\n"
    "a{color:var(--accent)}\n"
    "a:focus,button:focus,input:focus,select:focus,textarea:focus,summary:focus{outline:3px solid #f0a500;"
    "outline-offset:2px}\n"
    ".skip{position:absolute;left:-999px}.skip:focus{left:8px;top:8px;background:#fff;padding:6px;z-index:9}\n"
    "header.top{background:#172b4d;color:#fff;display:flex;flex-wrap:wrap;align-items:center;gap:4px 18px;"
    "padding:10px 18px}\n"
    "header.top .brand{font-weight:700;font-size:17px;color:#fff;text-decoration:none;margin-right:8px}\n"
    "header.top nav ul{list-style:none;display:flex;flex-wrap:wrap;gap:2px 4px;margin:0;padding:0}\n"
    "header.top nav a{color:#dfe6f2;text-decoration:none;padding:6px 10px;border-radius:6px;display:block}\n"
    "header.top nav a:hover{background:#2a4372}\n"
    "header.top nav a[aria-current=page]{background:#fff;color:#172b4d;font-weight:600}\n"
    "header.top form.out{margin-left:auto;display:flex;align-items:center;gap:8px;color:#dfe6f2}\n"
    "header.top form.out button{background:transparent;color:#fff;border:1px solid #8fa3c6}\n"
    "main{max-width:1180px;margin:0 auto;padding:18px}\n"
    "h1{font-size:24px;margin:6px 0 16px}h2{font-size:18px;margin:24px 0 10px}\n"
    "table{width:100%;border-collapse:collapse;background:var(--card);border:1px solid var(--line);"
    "border-radius:8px;overflow:hidden}\n"
    "th,td{text-align:left;padding:8px 10px;border-bottom:1px solid var(--line);vertical-align:top}\n"
    "th{background:#eef1f5;font-size:13px;color:var(--muted);font-weight:600}\n"
    "tr:last-child td{border-bottom:0}\n"
    ".muted{color:var(--muted)}.small{font-size:13px}.mono,code{font-family:ui-monospace,Menlo,Consolas,"
    "monospace;font-size:13px}\n"
    ".badge{display:inline-block;padding:1px 8px;border-radius:999px;font-size:12px;font-weight:600;"
    "border:1px solid transparent;white-space:nowrap}\n"
    ".b-active,.b-valid,.b-done{background:var(--okbg);color:var(--ok)}\n"
    ".b-disabled,.b-needs_token,.b-expired,.b-invalid,.b-dead,.b-failed{background:var(--errbg);"
    "color:var(--err)}\n"
    ".b-pending,.b-removing,.b-unchecked,.b-running,.b-backfill{background:var(--warnbg);"
    "color:var(--warn)}\n"
    ".backfill-error{color:var(--err)}\n"
    ".notice{padding:10px 14px;border-radius:8px;margin:0 0 16px;border:1px solid}\n"
    ".notice.ok{background:var(--okbg);color:var(--ok);border-color:#9fd5b3}\n"
    ".notice.error{background:var(--errbg);color:var(--err);border-color:#f1a9a9}\n"
    ".card{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:14px 16px;"
    "margin:0 0 16px}\n"
    ".stats{display:grid;grid-template-columns:repeat(auto-fill,minmax(150px,1fr));gap:12px;margin:0 0 16px}\n"
    ".stat{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:12px}\n"
    ".stat b{display:block;font-size:26px}\n"
    "form.stack{display:grid;gap:10px;max-width:560px}\n"
    "form.inline{display:inline}\n"
    "form.filters{display:flex;flex-wrap:wrap;gap:10px;align-items:flex-end;margin:0 0 14px}\n"
    "form.filters div{display:grid;gap:3px}\n"
    "label{font-weight:600;font-size:14px}\n"
    "input[type=text],input[type=password],input[type=search],select,textarea{font:inherit;padding:7px 9px;"
    "border:1px solid #aab3c2;border-radius:6px;background:#fff;min-width:0;width:100%}\n"
    "button,.button{font:inherit;padding:7px 14px;border-radius:6px;border:1px solid var(--accent);"
    "background:var(--accent);color:var(--accent-fg);cursor:pointer;text-decoration:none;"
    "display:inline-block}\n"
    "button.secondary,.button.secondary{background:#fff;color:var(--accent)}\n"
    "button.danger{background:var(--err);border-color:var(--err)}\n"
    "pre{background:#0f1724;color:#e6edf7;padding:12px;border-radius:8px;overflow:auto;max-height:70vh;"
    "font-size:13px;white-space:pre-wrap;word-break:break-word}\n"
    "pre.err{background:#fff;color:var(--fg);border:1px solid var(--line);max-height:10em;margin:0}\n"
    "dl.meta{display:grid;grid-template-columns:max-content 1fr;gap:4px 16px;margin:0}\n"
    "dl.meta dt{color:var(--muted)}dl.meta dd{margin:0;word-break:break-word}\n"
    ".tabs{display:flex;gap:6px;margin:0 0 12px;flex-wrap:wrap;padding:0;list-style:none}\n"
    ".tabs a{padding:6px 12px;border:1px solid var(--line);border-radius:999px;text-decoration:none;"
    "background:#fff}\n"
    ".tabs a[aria-current=page]{background:var(--accent);color:#fff;border-color:var(--accent)}\n"
    ".pager{margin:12px 0}\n"
    ".login{max-width:380px;margin:8vh auto}\n"
    "footer{max-width:1180px;margin:0 auto;padding:8px 18px 24px;color:var(--muted);font-size:12px}\n"
    ".table-wrap{overflow-x:auto;margin:0 0 16px}.card>h2:first-child{margin-top:0}\n"
    /* charts (chart.h): the SVG scales to the column; its table stays for
     * screen readers but is hidden visually */
    "figure.chart{margin:0 0 16px;max-width:100%}figure.chart svg{max-width:100%;height:auto}\n"
    "figure.chart figcaption{font-weight:600;margin:0 0 4px}\n"
    "figure.spark{display:inline-block;margin:0;vertical-align:middle}\n"
    "figure.spark figcaption{position:absolute;left:-9999px}\n"
    ".chart-table{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0);"
    "white-space:nowrap}\n"
    ".silent{color:var(--err);font-weight:600}\n"
    "tr.live-new{animation:live-new 3s ease-out}\n"
    "@keyframes live-new{from{background:#fff3bf}to{background:transparent}}\n"
    "@media (prefers-reduced-motion:reduce){tr.live-new{animation:none}}\n"
    "@media (max-width:700px){main{padding:10px}th,td{padding:6px}.hide-sm{display:none}"
    "header.top form.out{margin-left:0}}\n";

/* The only script, two parts; every page works without it.
 * 1. The token return page reads the fragment Trello sent back
 *    (#token=...), removes it from the address bar and history, and posts
 *    the token with the page's CSRF token.
 * 2. The live view: on a page with an event table marked data-live-max
 *    (dashboard, newest events), new events' rows arrive over
 *    /admin/events/stream (EventSource) and are put on top; the rows are
 *    rendered and escaped by the server (admin_event_row), parsed in a
 *    <template> so nothing in them runs. The CSP (script-src 'self',
 *    connect-src from default-src 'self') allows exactly this. */
static const char admin_js[] =
    "(function(){\n"
    "  var body = document.querySelector('tbody[data-live-max]');\n"
    "  if (!body || !window.EventSource) return;\n"
    "  var max = parseInt(body.getAttribute('data-live-max'), 10) || 50;\n"
    "  var status = document.getElementById('live-status');\n"
    "  var say = function (t) { if (status) status.textContent = t; };\n"
    "  var es = new EventSource('/admin/events/stream');\n"
    "  es.addEventListener('row', function (e) {\n"
    "    var t = document.createElement('template');\n"
    "    t.innerHTML = e.data;\n"
    "    var row = t.content.querySelector('tr');\n"
    "    if (!row) return;\n"
    "    row.className = 'live-new';\n"
    "    body.insertBefore(row, body.firstChild);\n"
    "    while (body.rows.length > max) body.deleteRow(body.rows.length - 1);\n"
    "    var none = document.getElementById('no-events');\n"
    "    if (none) none.remove();\n"
    "    var wrap = body.closest('.table-wrap');\n"
    "    if (wrap) wrap.hidden = false;\n"
    "  });\n"
    "  es.onopen = function () { say('Live: new events appear here as they arrive.'); };\n"
    "  es.onerror = function () {\n"
    "    say(es.readyState === EventSource.CLOSED\n"
    "      ? 'The live view stopped; reload the page to see new events.'\n"
    "      : 'Reconnecting to the live view\\u2026');\n"
    "  };\n"
    "})();\n"
    "(function(){\n"
    "  var form = document.getElementById('token-return');\n"
    "  if (!form) return;\n"
    "  var status = document.getElementById('token-status');\n"
    "  var h = window.location.hash.replace(/^#/, '');\n"
    "  var params = new URLSearchParams(h);\n"
    "  if (history.replaceState) history.replaceState(null, '', window.location.pathname);\n"
    "  var tok = params.get('token');\n"
    "  if (tok) {\n"
    "    form.elements['token'].value = tok;\n"
    "    status.textContent = 'Saving the token\\u2026';\n"
    "    form.submit();\n"
    "  } else if (params.get('error')) {\n"
    "    status.textContent = 'Trello did not give a token (' + params.get('error') + ').';\n"
    "  } else {\n"
    "    status.textContent = 'No token arrived from Trello. You can paste one below.';\n"
    "  }\n"
    "})();\n";

/* Serve one of the two static files; they are cacheable (no secrets). */
bool admin_static(admin_req *r, const char *name)
{
	const char *data = NULL, *type = NULL;
	size_t len = 0;
	if (str_eq(name, "admin.css")) {
		data = admin_css;
		len = sizeof admin_css - 1;
		type = "text/css; charset=utf-8";
	} else if (str_eq(name, "admin.js")) {
		data = admin_js;
		len = sizeof admin_js - 1;
		type = "text/javascript; charset=utf-8";
	} else {
		return false;
	}
	http_response_body(r->res, 200, type, data, len);
	http_response_header(r->res, "Cache-Control", "public, max-age=3600");
	http_response_header(r->res, "X-Content-Type-Options", "nosniff");
	return true;
}

/* ---- escaping ------------------------------------------------------------------------ */

int admin_esc(buf *b, const char *s)
{
	return s ? html_escape(b, s) : 0;
}

int admin_urlenc(buf *b, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++) {
		int rc;
		if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		    (*p >= '0' && *p <= '9') || *p == '-' || *p == '_' || *p == '.' || *p == '~') {
			rc = buf_putc(b, (char)*p);
		} else {
			char e[3] = {'%', hex[*p >> 4], hex[*p & 15]};
			rc = buf_append(b, e, 3);
		}
		if (rc)
			return rc;
	}
	return 0;
}

int admin_time(buf *b, int64_t ms)
{
	if (ms <= 0)
		return buf_puts(b, "<span class=muted>never</span>");
	char iso[32];
	time_format_iso(ms, iso);
	/* "2026-11-20T09:15:02.117Z" shown as "2026-11-20 09:15:02 UTC" */
	char shown[32];
	str_printf(shown, sizeof shown, "%.10s %.8s UTC", iso, iso + 11);
	return buf_printf(b, "<time datetime=\"%s\">%s</time>", iso, shown);
}

int admin_masked(buf *b, const char *secret)
{
	char m[64];
	mask_secret(secret ? secret : "", m, sizeof m);
	buf_puts(b, "<span class=mono>");
	admin_esc(b, m);
	return buf_puts(b, "</span>");
}

/* ---- layout ---------------------------------------------------------------------------- */

/* Fixed texts for ?done=CODE after a redirect (never reflected as given). */
static const struct {
	const char *code, *text;
} done_texts[] = {
    {"webhook-added", "Webhook added and registered with Trello."},
    {"webhook-removed", "Webhook removed (on Trello and here)."},
    {"webhook-gone", "Trello no longer had this webhook; removed here."},
    {"webhook-updated", "Webhook changed on Trello and here."},
    {"webhook-paused", "Webhook paused: Trello sends no deliveries until it is resumed."},
    {"webhook-resumed", "Webhook resumed: Trello sends its deliveries again."},
    {"webhook-marked", "Trello could not be reached: the webhook is marked for removal and will be "
                       "removed when Trello answers (callbacks now get 410)."},
    {"backfill-asked", "Backfill asked for: serve lists what Trello did since the last pass and "
                       "stores what is missing; the webhook's row shows the outcome."},
    {"token-added", "Token stored."},
    {"token-checked", "Token checked with Trello."},
    {"token-removed", "Token removed."},
    {"delivery-retried", "Delivery queued again."},
    {"event-replayed", "Event queued for delivery again."},
};

void admin_notice(buf *b, const char *kind, const char *msg)
{
	buf_printf(b, "<p class=\"notice %s\" role=%s>", str_eq(kind, "ok") ? "ok" : "error",
	           str_eq(kind, "ok") ? "status" : "alert");
	admin_esc(b, msg);
	buf_puts(b, "</p>\n");
}

bool admin_table_begin(buf *b, size_t n, const char *empty, const char *head)
{
	if (n == 0) {
		if (empty)
			buf_printf(b, "<p class=muted>%s</p>\n", empty);
		return false;
	}
	buf_printf(b, "<div class=table-wrap><table>\n<thead><tr>%s</tr></thead>\n<tbody>\n", head);
	return true;
}

void admin_table_end(buf *b)
{
	buf_puts(b, "</tbody></table></div>\n");
}

void admin_page_begin(admin_req *r, buf *b, const char *title, const char *nav)
{
	static const struct {
		const char *key, *href, *label;
	} items[] = {
	    {"dashboard", "/admin/", "Dashboard"},
	    {"webhooks", "/admin/webhooks", "Webhooks"},
	    {"tokens", "/admin/tokens", "Tokens"},
	    {"events", "/admin/events", "Events"},
	    {"deliveries", "/admin/deliveries", "Deliveries"},
	    {"sync", "/admin/sync", "Sync"},
	};
	buf_init(b, ADMIN_PAGE_MAX);
	buf_puts(b,
	         "<!doctype html>\n<html lang=en>\n<head>\n<meta charset=utf-8>\n"
	         "<meta name=viewport content=\"width=device-width, initial-scale=1\">\n<title>");
	admin_esc(b, title);
	buf_puts(b,
	         " · trellohook</title>\n<link rel=stylesheet href=\"/admin/static/admin.css\">\n"
	         "<script src=\"/admin/static/admin.js\" defer></script>\n</head>\n<body>\n"
	         "<a class=skip href=\"#main\">Skip to content</a>\n<header class=top>\n"
	         "<a class=brand href=\"/admin/\">trellohook</a>\n");
	if (r->user[0]) {
		buf_puts(b, "<nav aria-label=\"Main\"><ul>\n");
		for (size_t i = 0; i < TH_ARRAY_LEN(items); i++)
			buf_printf(b, "<li><a href=\"%s\"%s>%s</a></li>\n", items[i].href,
			           str_eq(nav, items[i].key) ? " aria-current=page" : "",
			           items[i].label);
		buf_puts(b, "</ul></nav>\n<form class=out method=post action=\"/admin/logout\">"
		            "<span class=small>");
		admin_esc(b, r->user);
		buf_puts(b, "</span>");
		admin_csrf_field(r, b);
		buf_puts(b, "<button type=submit>Sign out</button></form>\n");
	}
	buf_puts(b, "</header>\n<main id=main>\n<h1>");
	admin_esc(b, title);
	buf_puts(b, "</h1>\n");
	const char *done = http_arg(r->req, "done");
	for (size_t i = 0; done && i < TH_ARRAY_LEN(done_texts); i++)
		if (str_eq(done, done_texts[i].code))
			admin_notice(b, "ok", done_texts[i].text);
}

void admin_page_end(buf *b)
{
	buf_puts(b, "</main>\n<footer>trellohook admin</footer>\n</body>\n</html>\n");
}

void admin_input(buf *b, const char *attrs, const char *value)
{
	buf_printf(b, "<input %s value=\"", attrs);
	admin_esc(b, value);
	buf_puts(b, "\">");
}

void admin_csrf_field(admin_req *r, buf *b)
{
	admin_input(b, "type=hidden name=csrf", r->csrf);
}

void admin_security_headers(http_response *res)
{
	/* Every page: no inline script, no framing, nothing cached or leaked. */
	http_response_header(
	    res, "Content-Security-Policy",
	    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' "
	    "data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'");
	http_response_header(res, "X-Frame-Options", "DENY");
	http_response_header(res, "X-Content-Type-Options", "nosniff");
	http_response_header(res, "Referrer-Policy", "no-referrer");
	http_response_header(res, "Cache-Control", "no-store");
}

int admin_send(admin_req *r, int status, buf *b)
{
	if (!b->data) {
		http_response_text(r->res, 500, "out of memory\n");
	} else if (b->len >= b->max) {
		http_response_text(r->res, 500, "page too large\n");
	} else {
		http_response_body(r->res, status, "text/html; charset=utf-8", b->data, b->len);
	}
	admin_security_headers(r->res);
	buf_free(b);
	return HTTP_DONE;
}

int admin_redirect(admin_req *r, const char *location)
{
	http_response_text(r->res, 303, "See %s\n", location);
	http_response_header(r->res, "Location", location);
	admin_security_headers(r->res);
	return HTTP_DONE;
}

int admin_error_page(admin_req *r, int status, const char *title, const char *msg)
{
	buf b;
	admin_page_begin(r, &b, title, "");
	admin_notice(&b, "error", msg);
	buf_puts(&b, r->user[0] ? "<p><a href=\"/admin/\">Back to the dashboard</a></p>\n"
	                        : "<p><a href=\"/admin/login\">Sign in</a></p>\n");
	admin_page_end(&b);
	return admin_send(r, status, &b);
}

void admin_badge(buf *b, const char *state)
{
	buf_printf(b, "<span class=\"badge b-%s\">", state);
	admin_esc(b, str_eq(state, "needs_token") ? "needs new token" : state);
	buf_puts(b, "</span>");
}

bool admin_path_id_ok(const char *s, size_t n)
{
	return n > 0 && n <= 64 && str_is_b64url(s, n);
}

/* ---- forms ------------------------------------------------------------------------------ */

/* The body as sent by a browser form (application/x-www-form-urlencoded):
 * NAME=VALUE pairs joined by '&', percent-encoded, '+' for spaces. */
int admin_form_parse(admin_req *r)
{
	r->nform = 0;
	const char *ct = http_header(r->req, "Content-Type");
	if (!ct || !r->req->body || r->req->body_len == 0)
		return 0;
	size_t ctl = strcspn(ct, ";");
	while (ctl > 0 && ct[ctl - 1] == ' ')
		ctl--;
	if (ctl != strlen("application/x-www-form-urlencoded") ||
	    strncasecmp(ct, "application/x-www-form-urlencoded", ctl))
		return 0;
	const char *body = r->req->body;
	size_t len = r->req->body_len;
	/* Decoded text is never longer than the input: one arena of len + fields. */
	free(r->form_mem);
	r->form_mem = malloc(len + 2 * ADMIN_MAX_FIELDS + 2);
	if (!r->form_mem)
		return TH_ENOMEM;
	char *o = r->form_mem;
	size_t i = 0;
	while (i < len) {
		size_t end = i;
		while (end < len && body[end] != '&')
			end++;
		if (end > i) {
			if (r->nform >= ADMIN_MAX_FIELDS)
				return TH_EINVAL;
			const char *eq = memchr(body + i, '=', end - i);
			size_t nlen = eq ? (size_t)(eq - (body + i)) : end - i;
			long kl = str_url_decode(body + i, nlen, true, o);
			if (kl < 0 || !str_utf8_valid(o, (size_t)kl))
				return TH_EINVAL;
			r->form[r->nform].name = o;
			o += kl + 1;
			long vl =
			    eq ? str_url_decode(eq + 1, (size_t)(body + end - eq - 1), true, o) : 0;
			if (!eq)
				*o = '\0';
			if (vl < 0 || !str_utf8_valid(o, (size_t)vl))
				return TH_EINVAL;
			r->form[r->nform].value = o;
			o += vl + 1;
			r->nform++;
		}
		i = end + 1;
	}
	return 0;
}

const char *admin_field(const admin_req *r, const char *name)
{
	return http_pair_get(r->form, r->nform, name);
}

void admin_req_clear(admin_req *r)
{
	free(r->form_mem);
	r->form_mem = NULL;
	r->nform = 0;
	sodium_memzero(r->csrf, sizeof r->csrf);
}

/* ---- cookies and hashes ---------------------------------------------------------------- */

/* Cookie: a=b; c=d — possibly over several Cookie headers. */
bool admin_cookie(const http_request *req, const char *name, char *out, size_t outsz)
{
	size_t nl = strlen(name);
	for (size_t h = 0; h < req->nheaders; h++) {
		if (!str_case_eq(req->headers[h].name, "Cookie"))
			continue;
		const char *p = req->headers[h].value;
		while (p && *p) {
			while (*p == ' ' || *p == ';')
				p++;
			const char *end = strchr(p, ';');
			size_t len = end ? (size_t)(end - p) : strlen(p);
			if (len > nl && !strncmp(p, name, nl) && p[nl] == '=') {
				size_t vl = len - nl - 1;
				if (vl + 1 > outsz)
					return false;
				memcpy(out, p + nl + 1, vl);
				out[vl] = '\0';
				return true;
			}
			p = end;
		}
	}
	return false;
}

void admin_sha256_hex(const char *s, size_t len, char out[65])
{
	unsigned char h[crypto_hash_sha256_BYTES];
	crypto_hash_sha256(h, (const unsigned char *)s, len);
	sodium_bin2hex(out, 65, h, sizeof h);
}

void admin_token_fp(const char *tok, char out[17])
{
	char hex[65];
	admin_sha256_hex(tok ? tok : "", tok ? strlen(tok) : 0, hex);
	memcpy(out, hex, 16);
	out[16] = '\0';
}
