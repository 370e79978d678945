/* SPDX-License-Identifier: MIT */
/* admin_webhooks.c — webhooks (list, add, pick a board, edit, pause or
 * resume, delete), tokens (Trello's authorize flow, check, remove) and sync
 * (plan, then apply).
 * All Trello work goes through the service layer (service/service.h). */
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "server/admin.h"
#include "service/activity.h"
#include "service/backfill.h"
#include "service/service.h"
#include "util/log.h"

#define MODEL_INPUT_MAX 512
#define DESCRIPTION_MAX 1000
/* The description field of the add and edit forms (maxlength: DESCRIPTION_MAX). */
#define DESCRIPTION_INPUT "type=text id=description name=description maxlength=1000"

/* The plain token a form names: a pasted "token" wins, else "token_fp", the
 * fingerprint of a stored token. *out is malloc'd (wipe and free it).
 * Returns 0 or TH_EINVAL / TH_ENOTFOUND with a message in @err. */
static int form_token(admin_req *r, char **out, th_error *err)
{
	*out = NULL;
	const char *pasted = admin_field(r, "token");
	const char *fp = admin_field(r, "token_fp");
	if (pasted && *pasted) {
		if (!str_is_trello_token(pasted))
			return th_err(
			    err, TH_EINVAL,
			    "That does not look like a Trello token (64 hex digits, or ATTA "
			    "followed by 72 more).");
		*out = str_dup(pasted);
		return *out ? 0 : th_err(err, TH_ENOMEM, "out of memory");
	}
	if (!fp || !*fp)
		return th_err(err, TH_EINVAL, "Choose a token or paste one.");
	token *ts = NULL;
	size_t n = 0;
	int rc = svc_token_list(r->sc, &ts, &n, err);
	if (rc)
		return rc;
	rc = th_err(err, TH_ENOTFOUND, "That token is no longer stored.");
	for (size_t i = 0; i < n; i++) {
		char f[17];
		admin_token_fp(ts[i].token, f);
		if (str_eq(f, fp)) {
			*out = str_dup(ts[i].token);
			rc = *out ? 0 : th_err(err, TH_ENOMEM, "out of memory");
			break;
		}
	}
	token_list_free(ts, n);
	return rc;
}

static void free_token(char *t)
{
	if (t) {
		sodium_memzero(t, strlen(t));
		free(t);
	}
}

/* <select name=token_fp> of the stored tokens. */
static void token_picker(buf *b, const token *ts, size_t n, const char *id)
{
	buf_printf(b, "<label for=%s>Token</label>\n<select id=%s name=token_fp>\n", id, id);
	if (n == 0)
		buf_puts(b, "<option value=\"\">No stored tokens: paste one below</option>\n");
	for (size_t i = 0; i < n; i++) {
		char fp[17], m[64];
		admin_token_fp(ts[i].token, fp);
		mask_secret(ts[i].token, m, sizeof m);
		buf_printf(b, "<option value=\"%s\">", fp);
		admin_esc(b, m);
		if (ts[i].member) {
			buf_puts(b, " — ");
			admin_esc(b, ts[i].member);
		}
		buf_printf(b, " (%s)</option>\n", token_state_name(ts[i].state));
	}
	buf_puts(b, "</select>\n");
}

/* ---- webhooks ------------------------------------------------------------------------------- */

/* Where backfill stands for webhook @id: how many actions the last gap held
 * and when it was, and the last pass's error. Nothing before a first pass. */
static void backfill_cell(admin_req *r, buf *b, const char *id)
{
	backfill_mark m;
	th_error err = {0, {0}};
	if (svc_backfill_mark(r->sc, id, &m, &err))
		return;
	buf_puts(b, "<br><span class=\"small muted backfill\">");
	if (m.recovered) {
		buf_printf(b, "recovered %lld missed action%s from ", (long long)m.recovered,
		           m.recovered == 1 ? "" : "s");
		admin_time(b, m.gap_from);
		buf_puts(b, " to ");
		admin_time(b, m.gap_to);
	} else {
		buf_puts(b, "nothing missed");
	}
	buf_puts(b, "</span>");
	if (m.error) {
		buf_puts(b, "<br><span class=\"small backfill-error\">last backfill failed: ");
		admin_esc(b, m.error);
		buf_puts(b, "</span>");
	}
	backfill_mark_clear(&m);
}

static int webhooks_page(admin_req *r, int status, const char *error)
{
	webhook *ws = NULL;
	token *ts = NULL;
	size_t nw = 0, nt = 0;
	th_error err = {0, {0}};
	svc_activity act = {0};
	bool have_act = false;
	buf b;
	admin_page_begin(r, &b, "Webhooks", "webhooks");
	if (error)
		admin_notice(&b, "error", error);
	if (svc_webhook_list(r->sc, &ws, &nw, &err) || svc_token_list(r->sc, &ts, &nt, &err)) {
		admin_notice(&b, "error", err.msg);
		goto out;
	}
	if (nw > 0) {
		have_act = admin_webhook_activity_read(r, &act, &err) == 0;
		if (!have_act)
			admin_notice(&b, "error", err.msg);
	}
	if (admin_table_begin(&b, nw, "No webhooks yet. Add one below.",
	                      "<th scope=col>Model</th><th scope=col>Description</th>"
	                      "<th scope=col class=hide-sm>Token</th><th scope=col>State</th>"
	                      "<th scope=col class=hide-sm>Last event</th><th scope=col>Events</th>"
	                      "<th scope=col><span class=muted>Action</span></th>")) {
		for (size_t i = 0; i < nw; i++) {
			const webhook *w = &ws[i];
			buf_puts(&b, "<tr><td><strong>");
			admin_esc(&b, w->model_name ? w->model_name : "(unnamed)");
			buf_puts(&b, "</strong><br><span class=\"muted small\">");
			admin_esc(&b, w->model_type ? w->model_type : "model");
			buf_puts(&b, " <span class=mono>");
			admin_esc(&b, w->id_model);
			buf_puts(&b, "</span></span></td><td>");
			admin_esc(&b, w->description);
			buf_puts(&b, "</td><td class=hide-sm>");
			admin_masked(&b, w->token);
			buf_puts(&b, "</td><td>");
			admin_badge(&b, webhook_state_name(w->state));
			if (w->state == WEBHOOK_ACTIVE && !w->active)
				buf_puts(
				    &b, " <span class=\"badge b-disabled\">Trello-disabled</span>");
			backfill_cell(r, &b, w->id);
			buf_puts(&b, "</td><td class=\"small hide-sm\">");
			admin_time(&b, w->last_event_at);
			buf_puts(&b, "<br>");
			admin_webhook_activity_cell(&b, have_act ? &act : NULL, w, i);
			buf_puts(&b, "</td><td><a href=\"/admin/events?webhook=");
			admin_urlenc(&b, w->id);
			buf_printf(&b, "\">%lld</a></td><td><a href=\"/admin/webhooks/",
			           (long long)w->event_count);
			admin_urlenc(&b, w->id);
			buf_puts(&b, "/edit\">Edit</a> · <a href=\"/admin/webhooks/");
			admin_urlenc(&b, w->id);
			buf_puts(&b, "/delete\">Delete</a>");
			/* POST (with the CSRF field): it makes serve call Trello */
			buf_puts(&b, "<form class=inline method=post action=\"/admin/webhooks/");
			admin_urlenc(&b, w->id);
			buf_puts(&b, "/backfill\">");
			admin_csrf_field(r, &b);
			buf_puts(&b,
			         "<button type=submit class=\"secondary small\" title=\"List what "
			         "Trello did since the last pass and store what is missing\">"
			         "Backfill</button></form></td></tr>\n");
		}
		admin_table_end(&b);
	}
	/* The add form. */
	const char *model = admin_field(r, "model");
	const char *desc = admin_field(r, "description");
	buf_puts(&b, "<section aria-labelledby=h-add class=card><h2 id=h-add>Add a webhook</h2>\n"
	             "<form class=stack method=post action=\"/admin/webhooks/add\">\n");
	admin_csrf_field(r, &b);
	buf_puts(&b, "<label for=model>Trello board or card URL, or a 24-hex id</label>\n");
	admin_input(&b,
	            "type=text id=model name=model required maxlength=512 "
	            "placeholder=\"https://trello.com/b/AbCd1234/roadmap\"",
	            model);
	buf_puts(&b, "\n<label for=description>Description (optional)</label>\n");
	admin_input(&b, DESCRIPTION_INPUT, desc);
	buf_puts(&b, "\n");
	token_picker(&b, ts, nt, "token_fp");
	buf_puts(&b,
	         "<label for=token>…or paste a token</label>\n"
	         "<input type=password id=token name=token autocomplete=off "
	         "placeholder=\"ATTA…\">\n"
	         "<p class=\"small muted\">No token? <a href=\"/admin/tokens\">Get one from "
	         "Trello</a>.</p>\n"
	         "<div><button type=submit>Add webhook</button> "
	         "<button type=submit class=secondary formaction=\"/admin/webhooks/boards\" "
	         "formnovalidate>Pick from the token's boards</button></div>\n</form></section>\n");
out:
	svc_activity_clear(&act);
	webhook_list_free(ws, nw);
	token_list_free(ts, nt);
	admin_page_end(&b);
	return admin_send(r, status, &b);
}

/* A Trello client for one admin request: every call it makes ends within
 * ADMIN_TRELLO_BUDGET_MS in all (a Trello that accepts and never answers
 * gives an error page saying what it waited for, not a 2-minute hang). */
static int admin_trello_client(admin_req *r, trello_client **tc, th_error *err)
{
	int rc = svc_trello_client(r->sc, tc, err);
	if (!rc)
		trello_client_set_deadline(*tc, ADMIN_TRELLO_BUDGET_MS);
	return rc;
}

static int status_for(int code)
{
	switch (code) {
	case TH_EINVAL:
	case TH_ETRELLO: return 400;
	case TH_ENOTFOUND: return 404;
	case TH_EEXISTS: return 409;
	case TH_EAUTH: return 403;
	case TH_EUNAVAIL: return 502;
	default: return 500;
	}
}

static int webhook_add_post(admin_req *r)
{
	th_error err = {0, {0}};
	const char *model = admin_field(r, "model");
	const char *desc = admin_field(r, "description");
	if (!model || !*model)
		return webhooks_page(r, 400, "Enter a Trello board or card URL, or an id.");
	if (strlen(model) > MODEL_INPUT_MAX || (desc && strlen(desc) > DESCRIPTION_MAX))
		return webhooks_page(r, 400, "The model or the description is too long.");
	char *tok = NULL;
	if (form_token(r, &tok, &err))
		return webhooks_page(r, 400, err.msg);
	trello_client *tc = NULL;
	webhook w;
	memset(&w, 0, sizeof w);
	char note[256] = "";
	int rc = admin_trello_client(r, &tc, &err);
	if (!rc) {
		webhook_add_opts o = {model, tok, desc && *desc ? desc : NULL};
		rc = svc_webhook_add(r->sc, tc, &o, &w, note, sizeof note, &err);
	}
	trello_client_free(tc);
	if (!rc && svc_token_remember(r->sc, tok, &err))
		log_warn("admin", "remembering the token failed: %s", err.msg);
	free_token(tok);
	if (rc)
		return webhooks_page(r, status_for(rc), err.msg);
	log_info("admin", "%s added webhook %s on %s", r->user, w.id, w.id_model);
	webhook_clear(&w);
	return admin_redirect(r, "/admin/webhooks?done=webhook-added");
}

/* The boards of a token, each with a button that adds a webhook on it. */
static int webhook_boards_post(admin_req *r)
{
	th_error err = {0, {0}};
	char *tok = NULL;
	if (form_token(r, &tok, &err))
		return webhooks_page(r, 400, err.msg);
	/* Boards are picked by the token's fingerprint: remember a pasted one. */
	if (svc_token_remember(r->sc, tok, &err)) {
		free_token(tok);
		return webhooks_page(r, 500, err.msg);
	}
	trello_board_list boards = {NULL, 0};
	int rc = svc_trello_boards(r->sc, tok, &boards, &err);
	char fp[17];
	admin_token_fp(tok, fp);
	free_token(tok);
	if (rc)
		return webhooks_page(r, status_for(rc), err.msg);
	const char *desc = admin_field(r, "description");
	buf b;
	admin_page_begin(r, &b, "Pick a board", "webhooks");
	bool rows = admin_table_begin(
	    &b, boards.len, "This token sees no boards.",
	    "<th scope=col>Board</th><th scope=col><span class=muted>Action</span></th>");
	for (size_t i = 0; i < boards.len; i++) {
		const trello_board *bd = &boards.items[i];
		buf_puts(&b, "<tr><td>");
		admin_esc(&b, bd->name);
		buf_puts(&b, "<br><span class=\"muted small mono\">");
		admin_esc(&b, bd->id);
		buf_puts(&b, "</span></td><td><form class=inline method=post "
		             "action=\"/admin/webhooks/add\">");
		admin_csrf_field(r, &b);
		admin_input(&b, "type=hidden name=model", bd->id);
		admin_input(&b, "type=hidden name=token_fp", fp);
		admin_input(&b, "type=hidden name=description", desc);
		buf_puts(&b, "<button type=submit>Watch this board</button></form></td></tr>\n");
	}
	if (rows)
		admin_table_end(&b);
	buf_puts(&b, "<p><a href=\"/admin/webhooks\">Back to webhooks</a></p>\n");
	trello_board_list_clear(&boards);
	admin_page_end(&b);
	return admin_send(r, 200, &b);
}

static int webhook_delete(admin_req *r, const char *id)
{
	th_error err = {0, {0}};
	webhook w;
	memset(&w, 0, sizeof w);
	int rc = svc_webhook_get(r->sc, id, &w, &err);
	if (rc)
		return admin_error_page(r, rc == TH_ENOTFOUND ? 404 : 500, "Not found",
		                        rc == TH_ENOTFOUND ? "There is no such webhook." : err.msg);
	if (r->get) {
		buf b;
		admin_page_begin(r, &b, "Delete webhook", "webhooks");
		buf_puts(&b, "<div class=card><p>Delete the webhook on <strong>");
		admin_esc(&b, w.model_name ? w.model_name : w.id_model);
		buf_puts(&b, "</strong> (");
		admin_esc(&b, w.model_type);
		buf_puts(&b, ")");
		if (w.description && *w.description) {
			buf_puts(&b, ", “");
			admin_esc(&b, w.description);
			buf_puts(&b, "”");
		}
		buf_puts(&b,
		         "? It is removed on Trello first, then here. Its events are kept.</p>\n"
		         "<form method=post action=\"/admin/webhooks/");
		admin_urlenc(&b, w.id);
		buf_puts(&b, "/delete\">");
		admin_csrf_field(r, &b);
		buf_puts(&b,
		         "<button type=submit class=danger>Delete webhook</button> "
		         "<a class=\"button secondary\" href=\"/admin/webhooks\">Cancel</a></form>"
		         "</div>\n");
		webhook_clear(&w);
		admin_page_end(&b);
		return admin_send(r, 200, &b);
	}
	webhook_clear(&w);
	trello_client *tc = NULL;
	enum webhook_rm_outcome outcome = WEBHOOK_RM_REMOVED;
	rc = admin_trello_client(r, &tc, &err);
	if (!rc)
		rc = svc_webhook_rm(r->sc, tc, id, &outcome, &err);
	trello_client_free(tc);
	if (rc && !(rc == TH_EUNAVAIL && outcome == WEBHOOK_RM_MARKED))
		return webhooks_page(r, status_for(rc), err.msg);
	log_info("admin", "%s deleted webhook %s", r->user, id);
	return admin_redirect(
	    r, outcome == WEBHOOK_RM_MARKED     ? "/admin/webhooks?done=webhook-marked"
	       : outcome == WEBHOOK_RM_WAS_GONE ? "/admin/webhooks?done=webhook-gone"
	                                        : "/admin/webhooks?done=webhook-removed");
}

/* POST /admin/webhooks/{id}/backfill: serve's Trello thread runs the pass
 * (nothing here calls Trello); the row shows the outcome afterwards. */
static int webhook_backfill_post(admin_req *r, const char *id)
{
	th_error err = {0, {0}};
	int rc = svc_backfill_request(r->sc, id, &err);
	if (rc)
		return webhooks_page(r, status_for(rc), err.msg);
	log_info("admin", "%s asked for a backfill of webhook %s", r->user, id);
	return admin_redirect(r, "/admin/webhooks?done=backfill-asked");
}

/* ---- edit (description, pause / resume) ----------------------------------------------------- */

/* Can svc_webhook_change change @w? (Registered, not pending, not being removed.) */
static bool changeable(const webhook *w)
{
	return w->trello_id && w->state != WEBHOOK_PENDING && w->state != WEBHOOK_REMOVING;
}

/* The edit page of @w; @error (optional) above the forms, whose description
 * field then shows what was posted (when it could be read) instead of the
 * stored one. */
static int edit_page(admin_req *r, const webhook *w, int status, const char *error)
{
	buf b;
	admin_page_begin(r, &b, "Edit webhook", "webhooks");
	if (error)
		admin_notice(&b, "error", error);
	buf_puts(&b, "<div class=card><p>Webhook on <strong>");
	admin_esc(&b, w->model_name ? w->model_name : w->id_model);
	buf_puts(&b, "</strong> (");
	admin_esc(&b, w->model_type ? w->model_type : "model");
	buf_puts(&b, ") <span class=\"muted small mono\">");
	admin_esc(&b, w->id);
	buf_puts(&b, "</span> ");
	admin_badge(&b, webhook_state_name(w->state));
	buf_puts(&b, "</p>\n");
	if (!changeable(w)) {
		buf_printf(&b,
		           "<p class=muted>This webhook cannot be changed while it is %s.</p>\n",
		           webhook_state_name(w->state));
		goto out;
	}
	const char *posted = error ? admin_field(r, "description") : NULL;
	const char *desc = posted && strlen(posted) <= DESCRIPTION_MAX ? posted : w->description;
	buf_puts(&b, "<form class=stack method=post action=\"/admin/webhooks/");
	admin_urlenc(&b, w->id);
	buf_puts(&b, "/edit\">");
	admin_csrf_field(r, &b);
	buf_puts(&b, "<label for=description>Description</label>\n");
	admin_input(&b, DESCRIPTION_INPUT, desc);
	buf_puts(&b, "\n<div><button type=submit>Save description</button></div></form>\n"
	             "<form method=post action=\"/admin/webhooks/");
	admin_urlenc(&b, w->id);
	buf_puts(&b, "/edit\">");
	admin_csrf_field(r, &b);
	/* paused = inactive on Trello: Trello sends nothing until it is resumed */
	buf_printf(&b,
	           "<input type=hidden name=active value=%s><p>%s</p>"
	           "<button type=submit class=secondary>%s</button></form>\n",
	           w->active ? "false" : "true",
	           w->active ? "Trello sends this webhook's deliveries."
	                     : "Paused: Trello sends no deliveries until it is resumed.",
	           w->active ? "Pause deliveries" : "Resume deliveries");
out:
	buf_puts(&b, "</div>\n<p><a href=\"/admin/webhooks\">Back to webhooks</a></p>\n");
	admin_page_end(&b);
	return admin_send(r, status, &b);
}

/* What an edit form asks for, checked: *@desc (NULL: keep) and *@active
 * (-1: keep). NULL, or the message for a 400. */
static const char *edit_fields(admin_req *r, const char **desc, int *active)
{
	*desc = admin_field(r, "description");
	const char *act = admin_field(r, "active");
	*active = -1;
	if (!*desc && !act)
		return "Nothing to change: the form had neither a description nor a pause or "
		       "resume.";
	if (act && !str_eq(act, "true") && !str_eq(act, "false"))
		return "Pause or resume: the form's active field must be true or false.";
	if (act)
		*active = str_eq(act, "true");
	if (*desc && strlen(*desc) > DESCRIPTION_MAX)
		return "The description is too long: at most 1000 bytes of UTF-8 text.";
	for (const unsigned char *p = (const unsigned char *)(*desc ? *desc : ""); *p; p++)
		if (*p < 0x20 || *p == 0x7f)
			return "The description may not contain control characters (tabs, line "
			       "breaks and the like): use one line of text.";
	return NULL;
}

/* GET: the edit page. POST: change the description and/or pause or resume,
 * on Trello first, then here (svc_webhook_change, as `webhook update`). */
static int webhook_edit(admin_req *r, const char *id)
{
	th_error err = {0, {0}};
	webhook w, changed;
	memset(&w, 0, sizeof w);
	memset(&changed, 0, sizeof changed);
	int rc = svc_webhook_get(r->sc, id, &w, &err);
	if (rc)
		return admin_error_page(r, rc == TH_ENOTFOUND ? 404 : 500, "Not found",
		                        rc == TH_ENOTFOUND ? "There is no such webhook." : err.msg);
	int ret;
	if (r->get) {
		ret = edit_page(r, &w, 200, NULL);
		goto out;
	}
	const char *desc;
	int active;
	const char *bad = edit_fields(r, &desc, &active);
	if (bad) {
		ret = edit_page(r, &w, 400, bad);
		goto out;
	}
	trello_client *tc = NULL;
	rc = admin_trello_client(r, &tc, &err);
	if (!rc)
		rc = svc_webhook_change(r->sc, tc, id, desc, active, &changed, &err);
	trello_client_free(tc);
	if (rc) {
		/* the page exists: Trello not having the webhook is a conflict, not a 404 */
		ret = edit_page(r, &w, rc == TH_ENOTFOUND ? 409 : status_for(rc), err.msg);
		goto out;
	}
	log_info("admin", "%s changed webhook %s%s%s", r->user, id, desc ? " (description)" : "",
	         active < 0 ? "" : (active ? " (resumed)" : " (paused)"));
	ret = admin_redirect(r, active == 0   ? "/admin/webhooks?done=webhook-paused"
	                        : active == 1 ? "/admin/webhooks?done=webhook-resumed"
	                                      : "/admin/webhooks?done=webhook-updated");
out:
	webhook_clear(&changed);
	webhook_clear(&w);
	return ret;
}

int admin_webhooks(admin_req *r, const char *tail)
{
	if (str_eq(tail, "")) {
		if (!r->get)
			return admin_error_page(r, 405, "Method not allowed",
			                        "This page takes a GET.");
		return webhooks_page(r, 200, NULL);
	}
	if (str_eq(tail, "/add") || str_eq(tail, "/boards")) {
		if (!r->post) {
			http_response_header(r->res, "Allow", "POST");
			return admin_error_page(r, 405, "Method not allowed",
			                        "This takes a form post.");
		}
		return str_eq(tail, "/add") ? webhook_add_post(r) : webhook_boards_post(r);
	}
	/* /{id}/delete, /{id}/edit, /{id}/backfill */
	const char *id = tail + 1;
	const char *slash = strchr(id, '/');
	bool backfill = slash && str_eq(slash, "/backfill");
	bool edit = slash && str_eq(slash, "/edit");
	if (!slash || !(backfill || edit || str_eq(slash, "/delete")) ||
	    !admin_path_id_ok(id, (size_t)(slash - id)))
		return admin_error_page(r, 404, "Not found", "There is no such page in the admin.");
	char idbuf[65];
	memcpy(idbuf, id, (size_t)(slash - id));
	idbuf[slash - id] = '\0';
	if (backfill && !r->post) {
		http_response_header(r->res, "Allow", "POST");
		return admin_error_page(r, 405, "Method not allowed", "This takes a form post.");
	}
	if (edit)
		return webhook_edit(r, idbuf);
	return backfill ? webhook_backfill_post(r, idbuf) : webhook_delete(r, idbuf);
}

/* ---- tokens ------------------------------------------------------------------------------------
 */

/* TRELLO_AUTH_URL with everything Trello's authorize page needs; the token
 * comes back in the fragment of return_url (never sent to any server). */
static void auth_link(admin_req *r, buf *b)
{
	const th_config *cfg = r->sc->cfg;
	buf u;
	buf_init(&u, 4096);
	buf_puts(&u, cfg->auth_url);
	buf_puts(&u, strchr(cfg->auth_url, '?') ? "&" : "?");
	buf_puts(&u, "key=");
	admin_urlenc(&u, cfg->api_key);
	buf_puts(&u, "&name=trellohook&expiration=never&scope=read&response_type=token"
	             "&callback_method=fragment&return_url=");
	char ret[700];
	str_printf(ret, sizeof ret, "%s/admin/tokens/return", cfg->callback_domain);
	admin_urlenc(&u, ret);
	buf_puts(b, "<a class=button id=get-token href=\"");
	admin_esc(b, u.data ? u.data : "");
	buf_puts(b, "\">Get a token from Trello</a>");
	buf_free(&u);
}

static int tokens_page(admin_req *r, int status, const char *error, const char *ok)
{
	token *ts = NULL;
	size_t nt = 0;
	th_error err = {0, {0}};
	buf b;
	admin_page_begin(r, &b, "Tokens", "tokens");
	if (error)
		admin_notice(&b, "error", error);
	if (ok)
		admin_notice(&b, "ok", ok);
	buf_puts(&b, "<p>");
	if (r->sc->cfg->api_key[0])
		auth_link(r, &b);
	else
		buf_puts(&b,
		         "<span class=muted>Set TRELLO_API_KEY to get tokens from Trello.</span>");
	buf_puts(&b, "</p>\n");
	if (svc_token_list(r->sc, &ts, &nt, &err)) {
		admin_notice(&b, "error", err.msg);
		goto out;
	}
	if (admin_table_begin(&b, nt, "No tokens stored yet.",
	                      "<th scope=col>Token</th><th scope=col>Owner</th>"
	                      "<th scope=col>State</th><th scope=col>Expires</th>"
	                      "<th scope=col class=hide-sm>Checked</th>"
	                      "<th scope=col><span class=muted>Actions</span></th>")) {
		for (size_t i = 0; i < nt; i++) {
			char fp[17];
			admin_token_fp(ts[i].token, fp);
			buf_puts(&b, "<tr><td>");
			admin_masked(&b, ts[i].token);
			buf_puts(&b, "</td><td>");
			admin_esc(&b, ts[i].member ? ts[i].member : "?");
			buf_puts(&b, "</td><td>");
			admin_badge(&b, token_state_name(ts[i].state));
			buf_puts(&b, "</td><td class=small>");
			admin_time(&b, ts[i].expires_at);
			buf_puts(&b, "</td><td class=\"small hide-sm\">");
			admin_time(&b, ts[i].checked_at);
			buf_puts(
			    &b,
			    "</td><td><form class=inline method=post action=\"/admin/tokens/check\">");
			admin_csrf_field(r, &b);
			buf_printf(
			    &b,
			    "<input type=hidden name=token_fp value=\"%s\">"
			    "<button type=submit class=secondary>Check now</button></form> "
			    "<form class=inline method=post action=\"/admin/tokens/remove\">",
			    fp);
			admin_csrf_field(r, &b);
			buf_printf(
			    &b,
			    "<input type=hidden name=token_fp value=\"%s\">"
			    "<button type=submit class=danger>Remove</button></form></td></tr>\n",
			    fp);
		}
		admin_table_end(&b);
	}
	buf_puts(&b,
	         "<section aria-labelledby=h-paste class=card><h2 id=h-paste>Paste a token</h2>\n"
	         "<form class=stack method=post action=\"/admin/tokens/add\">");
	admin_csrf_field(r, &b);
	buf_puts(&b, "<label for=token>Trello user token</label>\n"
	             "<input type=password id=token name=token autocomplete=off required>\n"
	             "<div><button type=submit>Store and check</button></div></form></section>\n");
out:
	token_list_free(ts, nt);
	admin_page_end(&b);
	return admin_send(r, status, &b);
}

/* Store a token and check it with Trello right away. */
static int token_add_post(admin_req *r)
{
	th_error err = {0, {0}};
	const char *pasted = admin_field(r, "token");
	if (!pasted || !str_is_trello_token(pasted))
		return tokens_page(r, 400,
		                   "That does not look like a Trello token (64 hex digits, or ATTA "
		                   "followed by 72 more).",
		                   NULL);
	if (svc_token_remember(r->sc, pasted, &err))
		return tokens_page(r, 500, err.msg, NULL);
	trello_client *tc = NULL;
	token t;
	memset(&t, 0, sizeof t);
	int rc = admin_trello_client(r, &tc, &err);
	if (!rc)
		rc = svc_token_check(r->sc, tc, pasted, &t, NULL, &err);
	trello_client_free(tc);
	token_clear(&t);
	char m[64];
	mask_secret(pasted, m, sizeof m);
	log_info("admin", "%s stored token %s", r->user, m);
	if (rc) {
		char msg[400];
		str_printf(msg, sizeof msg, "Token stored, but it could not be checked: %s",
		           err.msg);
		return tokens_page(r, 200, NULL, msg);
	}
	return admin_redirect(r, "/admin/tokens?done=token-added");
}

/* Where Trello's authorize page sends the browser back: the token is in the
 * fragment, which admin.js reads and posts to /admin/tokens/add. */
static int token_return_page(admin_req *r)
{
	buf b;
	admin_page_begin(r, &b, "Token from Trello", "tokens");
	buf_puts(&b, "<p id=token-status role=status>Reading the token Trello sent back…</p>\n"
	             "<form id=token-return class=\"stack card\" method=post "
	             "action=\"/admin/tokens/add\">\n");
	admin_csrf_field(r, &b);
	buf_puts(&b, "<label for=token>Trello user token</label>\n"
	             "<input type=password id=token name=token autocomplete=off required>\n"
	             "<div><button type=submit>Store and check</button></div></form>\n"
	             "<p><a href=\"/admin/tokens\">Back to tokens</a></p>\n");
	admin_page_end(&b);
	return admin_send(r, 200, &b);
}

int admin_tokens(admin_req *r, const char *tail)
{
	if (str_eq(tail, "")) {
		if (!r->get)
			return admin_error_page(r, 405, "Method not allowed",
			                        "This page takes a GET.");
		return tokens_page(r, 200, NULL, NULL);
	}
	if (str_eq(tail, "/return")) {
		if (!r->get)
			return admin_error_page(r, 405, "Method not allowed",
			                        "This page takes a GET.");
		return token_return_page(r);
	}
	bool add = str_eq(tail, "/add"), check = str_eq(tail, "/check"),
	     remove = str_eq(tail, "/remove");
	if (!add && !check && !remove)
		return admin_error_page(r, 404, "Not found", "There is no such page in the admin.");
	if (!r->post) {
		http_response_header(r->res, "Allow", "POST");
		return admin_error_page(r, 405, "Method not allowed", "This takes a form post.");
	}
	if (add)
		return token_add_post(r);
	th_error err = {0, {0}};
	char *tok = NULL;
	/* Only stored tokens, by fingerprint: ignore any pasted field here. */
	if (!admin_field(r, "token_fp") || admin_field(r, "token"))
		return tokens_page(r, 400, "Choose a stored token.", NULL);
	if (form_token(r, &tok, &err))
		return tokens_page(r, status_for(err.code), err.msg, NULL);
	int rc;
	if (check) {
		trello_client *tc = NULL;
		token t;
		memset(&t, 0, sizeof t);
		rc = admin_trello_client(r, &tc, &err);
		if (!rc)
			rc = svc_token_check(r->sc, tc, tok, &t, NULL, &err);
		trello_client_free(tc);
		token_clear(&t);
	} else {
		rc = svc_token_remove(r->sc, tok, &err);
	}
	free_token(tok);
	if (rc)
		return tokens_page(r, status_for(rc), err.msg, NULL);
	return admin_redirect(r, check ? "/admin/tokens?done=token-checked"
	                               : "/admin/tokens?done=token-removed");
}

/* ---- sync --------------------------------------------------------------------------------------
 */

static void sync_report_html(buf *b, const sync_report *rep)
{
	for (size_t i = 0; i < rep->ntokens; i++)
		if (rep->tokens[i].error) {
			char m[64], msg[600];
			mask_secret(rep->tokens[i].token, m, sizeof m);
			str_printf(msg, sizeof msg, "Token %s: %s", m, rep->tokens[i].error);
			admin_notice(b, "error", msg);
		}
	buf_printf(b, "<p>%zu webhook%s in sync; %zu action%s%s.</p>\n", rep->in_sync,
	           rep->in_sync == 1 ? "" : "s", rep->nactions, rep->nactions == 1 ? "" : "s",
	           rep->dry_run ? " planned" : "");
	if (!admin_table_begin(b, rep->nactions, NULL,
	                       "<th scope=col>Action</th><th scope=col>Model</th>"
	                       "<th scope=col>Details</th><th scope=col>Result</th>"))
		return;
	for (size_t i = 0; i < rep->nactions; i++) {
		const sync_action *ac = &rep->actions[i];
		buf_puts(b, "<tr><td>");
		admin_esc(b, sync_kind_name(ac->kind));
		buf_puts(b, "</td><td class=mono>");
		admin_esc(b, ac->id_model);
		buf_puts(b, "</td><td>");
		admin_esc(b, ac->detail);
		buf_puts(b, "</td><td>");
		if (ac->error) {
			buf_puts(b, "<span class=\"badge b-failed\">failed</span> ");
			admin_esc(b, ac->error);
		} else if (ac->done) {
			buf_puts(b, "<span class=\"badge b-done\">done</span>");
		} else {
			buf_puts(b, rep->dry_run ? "<span class=muted>planned</span>"
			                         : "<span class=muted>nothing to do</span>");
		}
		buf_puts(b, "</td></tr>\n");
	}
	admin_table_end(b);
}

int admin_sync(admin_req *r)
{
	const char *step = r->post ? admin_field(r, "step") : NULL;
	bool prune = r->post && str_eq(admin_field(r, "prune"), "1");
	buf b;
	if (!r->post) {
		admin_page_begin(r, &b, "Sync with Trello", "sync");
		buf_puts(
		    &b,
		    "<div class=card><p>Sync compares the webhooks stored here with what Trello "
		    "has for every known token. You see the plan first; nothing changes until "
		    "you apply it.</p>\n<form method=post action=\"/admin/sync\">");
		admin_csrf_field(r, &b);
		buf_puts(
		    &b,
		    "<input type=hidden name=step value=plan>"
		    "<p><input type=checkbox id=prune name=prune value=1> "
		    "<label for=prune>Also delete duplicate or orphaned webhooks on Trello that "
		    "point here</label></p>"
		    "<button type=submit>Show the plan</button></form></div>\n");
		admin_page_end(&b);
		return admin_send(r, 200, &b);
	}
	if (!str_eq(step, "plan") && !str_eq(step, "apply"))
		return admin_error_page(r, 400, "Bad request", "Unknown sync step.");
	bool apply = str_eq(step, "apply");
	th_error err = {0, {0}};
	trello_client *tc = NULL;
	sync_report rep;
	memset(&rep, 0, sizeof rep);
	int rc = admin_trello_client(r, &tc, &err);
	if (!rc) {
		sync_opts o = {NULL, 0, !apply, prune};
		rc = svc_sync(r->sc, tc, &o, &rep, &err);
	}
	trello_client_free(tc);
	admin_page_begin(r, &b, apply ? "Sync result" : "Sync plan", "sync");
	if (rc) {
		admin_notice(&b, "error", err.msg);
	} else {
		if (apply)
			log_info("admin", "%s applied sync (%zu actions, %zu failures)", r->user,
			         rep.nactions, rep.failures);
		sync_report_html(&b, &rep);
		if (!apply && rep.nactions > 0) {
			buf_puts(&b, "<form method=post action=\"/admin/sync\">");
			admin_csrf_field(r, &b);
			buf_printf(
			    &b,
			    "<input type=hidden name=step value=apply>%s"
			    "<p><button type=submit>Apply this plan</button> "
			    "<a class=\"button secondary\" href=\"/admin/sync\">Cancel</a></p>"
			    "</form>\n",
			    prune ? "<input type=hidden name=prune value=1>" : "");
		}
	}
	sync_report_clear(&rep);
	admin_page_end(&b);
	return admin_send(r, rc ? status_for(rc) : 200, &b);
}
