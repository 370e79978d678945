/* SPDX-License-Identifier: MIT */
/* cmd_webhook.c — webhook add / ls / show / update / rm (the service does the work). */
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "service/backfill.h"
#include "service/service.h"

/* A webhook as JSON: INTERFACE.md's fields plus state, token (masked),
 * event_count and Trello's failure counters as last seen. */
static json_t *state_json(const void *rec)
{
	return json_string(webhook_state_name(((const webhook *)rec)->state));
}

static json_t *masked_token_json(const void *rec)
{
	const char *t = ((const webhook *)rec)->token;
	char masked[32];
	mask_secret(t ? t : "", masked, sizeof masked);
	return json_string(masked);
}

static const cli_jfield webhook_fields[] = {CLI_JSTR(webhook, id),
                                            CLI_JSTR(webhook, trello_id),
                                            CLI_JSTR(webhook, id_model),
                                            CLI_JSTR(webhook, model_type),
                                            CLI_JSTR(webhook, model_name),
                                            CLI_JSTR(webhook, description),
                                            CLI_JSTR(webhook, callback_url),
                                            CLI_JBOOL(webhook, active),
                                            CLI_JTIME(webhook, created_at),
                                            CLI_JTIME(webhook, last_event_at),
                                            CLI_JFN("state", state_json),
                                            CLI_JFN("token", masked_token_json),
                                            CLI_JI64(webhook, event_count),
                                            CLI_JINT(webhook, consecutive_failures),
                                            CLI_JTIME(webhook, first_consecutive_fail_at)};

static json_t *webhook_json(const void *item, void *ctx)
{
	(void)ctx;
	return CLI_JSON_RECORD(item, webhook_fields);
}

static const cli_jfield trello_view_fields[] = {
    CLI_JSTR(trello_webhook, id),
    CLI_JBOOL(trello_webhook, active),
    CLI_JINT(trello_webhook, consecutive_failures),
    CLI_JSTR(trello_webhook, first_consecutive_fail_date),
    CLI_JSTR(trello_webhook, description),
    CLI_JSTR(trello_webhook, id_model),
    CLI_JSTR(trello_webhook, callback_url)};

static void print_webhook(const webhook *w)
{
	char masked[32], created[32], last[32];
	mask_secret(w->token ? w->token : "", masked, sizeof masked);
	time_format_iso(w->created_at, created);
	if (w->last_event_at)
		time_format_iso(w->last_event_at, last);
	else
		str_copy(last, sizeof last, "never");
	printf(
	    "webhook      %s\nstate        %s%s\nmodel        %s %s \"%s\"\ndescription  %s\n"
	    "callback     %s\ntrello id    %s\ntoken        %s\ncreated      %s\nlast event   %s\n"
	    "events       %lld\n",
	    w->id, webhook_state_name(w->state), w->active ? " (active on Trello)" : "",
	    w->model_type ? w->model_type : "?", w->id_model, w->model_name ? w->model_name : "",
	    w->description ? w->description : "", w->callback_url,
	    w->trello_id ? w->trello_id : "-", masked, created, last, (long long)w->event_count);
	if (w->consecutive_failures)
		printf("failures     %d consecutive\n", w->consecutive_failures);
	if (w->state == WEBHOOK_NEEDS_TOKEN)
		printf(
		    "note         its token expired or was revoked: add it again with a new token\n");
	if (w->state == WEBHOOK_REMOVING)
		printf(
		    "note         removal pending: callbacks answer 410; `trellohook sync` finishes it\n");
}

int cmd_webhook_add(cli *c, int argc, char **argv)
{
	webhook_add_opts o = {NULL, NULL, NULL};
	const cli_flag flags[] = {CLI_STR("--model", &o.model), CLI_STR("--token", &o.token),
	                          CLI_STR("--description", &o.description)};
	int rc = CLI_PARSE(c, argc, argv, flags, NULL, NULL);
	if (rc)
		return rc;
	if (!o.model)
		return cli_fail(EXIT_USAGE,
		                "webhook add: --model is needed (a 24-hex Trello id or a "
		                "board/card URL such as https://trello.com/b/AbCd1234/roadmap)");
	if (!o.token)
		return cli_fail(EXIT_USAGE,
		                "webhook add: --token is needed (a Trello user token; see "
		                "TRELLO_AUTH_URL)");
	svc_ctx *sc;
	trello_client *tc;
	if ((rc = cli_svc_trello(c, &sc, &tc)) != 0)
		return rc;
	webhook w;
	char note[256];
	th_error err = {0, {0}};
	rc = svc_webhook_add(sc, tc, &o, &w, note, sizeof note, &err);
	trello_client_free(tc);
	if (rc)
		return cli_fail_err(&err);
	if (note[0])
		fprintf(stderr, "trellohook: note: %s\n", note);
	if (c->json) {
		rc = cli_print_json(webhook_json(&w, NULL));
	} else {
		printf("added webhook %s on %s \"%s\" (%s), Trello id %s%s\n", w.id,
		       w.model_type ? w.model_type : "model", w.model_name ? w.model_name : "",
		       w.id_model, w.trello_id ? w.trello_id : "-",
		       w.active ? "" : " — Trello reports it inactive");
		printf("callback URL %s\n", w.callback_url);
	}
	webhook_clear(&w);
	return rc;
}

static void webhook_row(const void *item, void *ctx, const char **cells, cli_cell_buf *scratch)
{
	const webhook *w = item;
	(void)ctx;
	mask_secret(w->token ? w->token : "", scratch[5], sizeof scratch[5]);
	str_printf(scratch[6], sizeof scratch[6], "%lld", (long long)w->event_count);
	const char *row[] = {w->id,         webhook_state_name(w->state),
	                     w->model_type, w->id_model,
	                     w->model_name, scratch[5],
	                     scratch[6],    w->description ? w->description : ""};
	memcpy(cells, row, sizeof row);
}

static const cli_col webhook_cols[] = {
    {"ID", 0, false},    {"STATE", 0, false}, {"TYPE", 0, false},  {"MODEL", 0, false},
    {"NAME", 30, false}, {"TOKEN", 0, false}, {"EVENTS", 0, true}, {"DESCRIPTION", 40, false}};
static const cli_list webhook_list =
    CLI_LIST_OF(webhook_cols, webhook_json, webhook_row,
                "no webhooks yet (webhook add --model ID|URL --token TOKEN)", NULL);

int cmd_webhook_ls(cli *c, int argc, char **argv)
{
	svc_ctx *sc;
	webhook *ws = NULL;
	size_t n = 0;
	th_error err = {0, {0}};
	int rc = cli_svc_noargs(c, argc, argv, &sc);
	if (rc || (rc = svc_webhook_list(sc, &ws, &n, &err) ? cli_fail_err(&err) : 0))
		return rc;
	rc = cli_print_list(c, ws, n, sizeof *ws, &webhook_list);
	webhook_list_free(ws, n);
	return rc;
}

int cmd_webhook_show(cli *c, int argc, char **argv)
{
	const char *id = NULL;
	bool trello = false;
	const cli_flag flags[] = {CLI_BOOL("--trello", &trello)};
	svc_ctx *sc;
	int rc = CLI_PARSE(c, argc, argv, flags, &id,
	                   "webhook show: expected one webhook id (see webhook ls)");
	if (rc || (rc = cli_svc_need(c, trello ? NEED_API_KEY : 0, &sc)))
		return rc;
	th_error err = {0, {0}};
	trello_webhook tw;
	memset(&tw, 0, sizeof tw);
	bool have_view = false;
	th_error verr = {0, {0}};
	if (trello) {
		trello_client *tc = NULL;
		if ((rc = cli_trello_client(sc, &tc)) != 0)
			return rc;
		/* first, so the row shown includes what Trello said */
		int vrc = svc_webhook_trello_view(sc, tc, id, &tw, &verr);
		trello_client_free(tc);
		if (vrc == TH_ENOTFOUND && str_starts(verr.msg, "no webhook"))
			return cli_fail_err(&verr);
		have_view = vrc == 0;
	}
	webhook w;
	if (svc_webhook_get(sc, id, &w, &err)) {
		trello_webhook_clear(&tw);
		return cli_fail_err(&err);
	}
	backfill_mark bm;
	th_error berr = {0, {0}};
	int brc = svc_backfill_mark(sc, id, &bm, &berr);
	if (brc && brc != TH_ENOTFOUND) {
		webhook_clear(&w);
		trello_webhook_clear(&tw);
		return cli_fail_err(&berr);
	}
	if (c->json) {
		json_t *o = webhook_json(&w, NULL);
		/* null until a backfill pass ran */
		if (o)
			json_object_set_new(o, "backfill",
			                    brc ? json_null() : cli_backfill_json(&bm));
		if (o && trello)
			json_object_set_new(o, "trello",
			                    have_view ? CLI_JSON_RECORD(&tw, trello_view_fields)
			                              : json_null());
		if (o && trello && !have_view)
			json_object_set_new(o, "trello_error", json_string(verr.msg));
		rc = cli_print_json(o);
	} else {
		print_webhook(&w);
		if (!brc)
			cli_print_backfill(&bm);
		if (have_view)
			printf(
			    "\nTrello's view\n  active                    %s\n  consecutiveFailures       %d\n"
			    "  firstConsecutiveFailDate  %s\n",
			    tw.active ? "true" : "false", tw.consecutive_failures,
			    tw.first_consecutive_fail_date ? tw.first_consecutive_fail_date
			                                   : "null");
		else if (trello)
			printf("\nTrello's view: unavailable: %s\n", verr.msg);
	}
	webhook_clear(&w);
	trello_webhook_clear(&tw);
	if (!brc)
		backfill_mark_clear(&bm);
	if (!rc && trello && !have_view)
		rc = EXIT_FAIL;
	return rc;
}

int cmd_webhook_rm(cli *c, int argc, char **argv)
{
	if (argc != 1 || argv[0][0] == '-')
		return argc ? cli_unexpected(c, argv[argc > 1 ? 1 : 0])
		            : cli_fail(EXIT_USAGE,
		                       "webhook rm: expected one webhook id (see webhook ls)");
	svc_ctx *sc;
	trello_client *tc;
	int rc = cli_svc_trello(c, &sc, &tc);
	if (rc)
		return rc;
	enum webhook_rm_outcome out;
	th_error err = {0, {0}};
	rc = svc_webhook_rm(sc, tc, argv[0], &out, &err);
	trello_client_free(tc);
	if (rc)
		return cli_fail_err(&err);
	switch (out) {
	case WEBHOOK_RM_WAS_GONE:
		printf("removed webhook %s (Trello no longer had it; removed here)\n", argv[0]);
		break;
	case WEBHOOK_RM_NEVER_REGISTERED:
		printf("removed webhook %s (it was never registered on Trello)\n", argv[0]);
		break;
	default: printf("removed webhook %s from Trello and here\n", argv[0]); break;
	}
	return EXIT_OK;
}

/* `webhook update ID [--description TEXT] [--active true|false]`: on Trello
 * first, then here; Trello's refusal changes nothing and is shown. */
int cmd_webhook_update(cli *c, int argc, char **argv)
{
	const char *id = NULL, *desc = NULL, *act = NULL;
	const cli_flag flags[] = {CLI_STR("--description", &desc), CLI_STR("--active", &act)};
	int rc = CLI_PARSE(c, argc, argv, flags, &id,
	                   "webhook update: expected one webhook id (see webhook ls)");
	if (rc)
		return rc;
	if (!desc && !act)
		return cli_fail(EXIT_USAGE, "webhook update: nothing to change: give --description "
		                            "TEXT and/or --active true|false");
	int active = -1;
	if (act && !str_eq(act, "true") && !str_eq(act, "false"))
		return cli_fail(EXIT_USAGE, "--active: expected true or false, got '%s'", act);
	if (act)
		active = str_eq(act, "true");
	svc_ctx *sc;
	trello_client *tc;
	if ((rc = cli_svc_trello(c, &sc, &tc)) != 0)
		return rc;
	webhook w;
	th_error err = {0, {0}};
	rc = svc_webhook_change(sc, tc, id, desc, active, &w, &err);
	trello_client_free(tc);
	if (rc)
		return cli_fail_err(&err);
	if (c->json) {
		rc = cli_print_json(webhook_json(&w, NULL));
	} else {
		printf("updated webhook %s on Trello and here: %s, description \"%s\"\n", id,
		       w.active ? "active" : "paused", w.description ? w.description : "");
	}
	webhook_clear(&w);
	return rc;
}
