/* SPDX-License-Identifier: MIT */
/* cmd_sync.c — `trellohook sync [--token T]... [--dry-run] [--prune] [--json]`:
 * print the plan (one line per action) and what came of it. */
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/progress.h"
#include "service/service.h"

#define SYNC_MAX_TOKENS 256

static json_t *report_json(const sync_report *r)
{
	json_t *doc = json_object();
	json_t *toks = json_array();
	json_t *acts = json_array();
	if (!doc || !toks || !acts) {
		json_decref(doc);
		json_decref(toks);
		json_decref(acts);
		return NULL;
	}
	for (size_t i = 0; i < r->ntokens; i++) {
		char masked[32];
		mask_secret(r->tokens[i].token, masked, sizeof masked);
		json_t *o = json_object();
		json_object_set_new(o, "token", json_string(masked));
		json_object_set_new(o, "trello_webhooks",
		                    json_integer((json_int_t)r->tokens[i].trello_webhooks));
		json_object_set_new(o, "error", cli_jstr(r->tokens[i].error));
		json_array_append_new(toks, o);
	}
	for (size_t i = 0; i < r->nactions; i++) {
		const sync_action *x = &r->actions[i];
		char masked[32];
		mask_secret(r->tokens[x->token_ix].token, masked, sizeof masked);
		json_t *o = json_object();
		json_object_set_new(o, "action", json_string(sync_kind_name(x->kind)));
		json_object_set_new(o, "webhook_id", cli_jstr(x->webhook_id));
		json_object_set_new(o, "trello_id", cli_jstr(x->trello_id));
		json_object_set_new(o, "id_model", cli_jstr(x->id_model));
		json_object_set_new(o, "callback_url", cli_jstr(x->callback_url));
		json_object_set_new(o, "token", json_string(masked));
		json_object_set_new(o, "detail", cli_jstr(x->detail));
		const char *result = x->error     ? "failed"
		                     : x->done    ? "done"
		                     : r->dry_run ? "planned"
		                                  : "reported";
		json_object_set_new(o, "result", json_string(result));
		json_object_set_new(o, "error", cli_jstr(x->error));
		json_array_append_new(acts, o);
	}
	json_object_set_new(doc, "dry_run", json_boolean(r->dry_run));
	json_object_set_new(doc, "tokens", toks);
	json_object_set_new(doc, "actions", acts);
	json_object_set_new(doc, "in_sync", json_integer((json_int_t)r->in_sync));
	json_object_set_new(doc, "failures", json_integer((json_int_t)r->failures));
	json_object_set_new(doc, "backfilled", json_integer((json_int_t)r->backfilled));
	return doc;
}

static const cli_col action_cols[] = {
    {"ACTION", 0, false}, {"WEBHOOK", 0, false}, {"TRELLO", 0, false}, {"MODEL", 0, false},
    {"TOKEN", 0, false},  {"DETAIL", 60, false}, {"RESULT", 0, false}};

/* The plan and its outcome: tokens, one table row per action, the counts. */
static void print_report(const sync_report *r, bool header)
{
	size_t done = 0, shown = 0;
	printf("%s: %zu token(s)\n", r->dry_run ? "sync plan (dry run: nothing changed)" : "sync",
	       r->ntokens);
	for (size_t i = 0; i < r->ntokens; i++) {
		char masked[32];
		mask_secret(r->tokens[i].token, masked, sizeof masked);
		if (r->tokens[i].error)
			printf("  token %s: cannot list: %s\n", masked, r->tokens[i].error);
		else
			printf("  token %s: %zu webhook(s) on Trello\n", masked,
			       r->tokens[i].trello_webhooks);
	}
	cli_table *t = NULL;
	if (cli_table_new(&t, action_cols, TH_ARRAY_LEN(action_cols)))
		t = NULL; /* out of memory: the counts below still print */
	for (size_t i = 0; i < r->nactions; i++) {
		const sync_action *x = &r->actions[i];
		if (x->kind == SYNC_TOKEN_ERROR)
			continue;
		char masked[32], result[512];
		mask_secret(r->tokens[x->token_ix].token, masked, sizeof masked);
		if (x->error)
			str_printf(result, sizeof result, "FAILED: %s", x->error);
		else
			str_copy(result, sizeof result,
			         x->done      ? "done"
			         : r->dry_run ? "planned"
			                      : "");
		const char *cells[] = {
		    sync_kind_name(x->kind),    x->webhook_id, x->trello_id, x->id_model, masked,
		    x->detail ? x->detail : "", result};
		if (t && cli_table_add(t, cells)) {
			cli_table_free(t);
			t = NULL;
		}
		done += x->done;
		shown++;
	}
	if (shown && t && cli_table_print(t, stdout, header))
		fprintf(stderr, "trellohook: sync: cannot write the plan to stdout\n");
	cli_table_free(t);
	printf("%zu action(s), %zu done, %zu webhook(s) already in sync, %zu failure(s)\n",
	       r->nactions, done, r->in_sync, r->failures);
	if (r->backfilled)
		printf("%zu missed action(s) recovered for webhooks registered or enabled again "
		       "(backfill)\n",
		       r->backfilled);
}

/* trello_progress_fn: the batch's count onto the status line, erased once
 * the batch is over (what follows, the service's log lines and the report,
 * then starts on a clean line). */
static void sync_progress(void *ctx, size_t done, size_t total)
{
	if (done < total)
		cli_progress_set(ctx, done, total);
	else
		cli_progress_end(ctx);
}

/* A --token value: shaped like a Trello token. */
static int check_token(void *dst, const char *name, const char *v)
{
	(void)dst;
	if (!str_is_trello_token(v))
		return cli_fail(EXIT_USAGE,
		                "%s: expected a Trello user token (64 hex characters, or ATTA "
		                "followed by 72 hex characters)",
		                name);
	return 0;
}

int cmd_sync(cli *c, int argc, char **argv)
{
	const char *tokens[SYNC_MAX_TOKENS];
	cli_strs tl = {tokens, 0, SYNC_MAX_TOKENS};
	sync_opts o = {tokens, 0, false, false};
	const cli_flag flags[] = {CLI_BOOL("--dry-run", &o.dry_run), CLI_BOOL("--prune", &o.prune),
	                          CLI_LIST("--token", &tl, check_token)};
	svc_ctx *sc;
	trello_client *tc = NULL;
	int rc = CLI_PARSE(c, argc, argv, flags, NULL, NULL);
	if (rc || (rc = cli_svc_trello(c, &sc, &tc)))
		return rc;
	o.ntokens = tl.n;
	th_error err = {0, {0}};
	/* done/total of each batch of Trello calls, on a terminal's stderr */
	cli_progress p;
	cli_progress_init(&p, stderr,
	                  o.dry_run ? "sync (dry run): Trello calls" : "sync: Trello calls");
	trello_client_set_progress(tc, sync_progress, &p);
	trello_client_set_notice(tc, CLI_TRELLO_NOTICE_MS, cli_trello_notice, &p);
	sync_report r;
	rc = svc_sync(sc, tc, &o, &r, &err);
	cli_progress_end(&p);
	trello_client_free(tc);
	if (rc)
		return cli_fail_err(&err);
	if (c->json)
		rc = cli_print_json(report_json(&r));
	else
		print_report(&r, !c->no_header);
	if (!rc && r.failures) {
		fprintf(stderr, "trellohook: sync: %zu failure(s) (see above)\n", r.failures);
		rc = EXIT_FAIL;
	}
	sync_report_clear(&r);
	return rc;
}
