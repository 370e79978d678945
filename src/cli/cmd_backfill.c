/* SPDX-License-Identifier: MIT */
/* cmd_backfill.c — `webhook backfill ID [--since DATE|ACTION_ID] [--json]`, and how
 * a webhook's backfill mark reads in `webhook show` (the service does the work). */
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/progress.h"
#include "service/backfill.h"
#include "service/service.h"

/* How long `webhook backfill` may wait for Trello in all: what is left when
 * it runs out is listed by the next pass, from the mark. */
#define BACKFILL_CLI_BUDGET_MS 300000

static const cli_jfield mark_fields[] = {CLI_JSTR(backfill_mark, last_action_id),
                                         CLI_JTIME(backfill_mark, last_action_at),
                                         CLI_JI64(backfill_mark, recovered),
                                         CLI_JTIME(backfill_mark, gap_from),
                                         CLI_JTIME(backfill_mark, gap_to),
                                         CLI_JSTR(backfill_mark, error),
                                         CLI_JTIME_AS("last_pass_at", backfill_mark, updated_at)};

json_t *cli_backfill_json(const backfill_mark *m)
{
	return CLI_JSON_RECORD(m, mark_fields);
}

void cli_print_backfill(const backfill_mark *m)
{
	char at[32], from[32], to[32];
	time_format_iso(m->updated_at, at);
	if (m->recovered) {
		time_format_iso(m->gap_from, from);
		time_format_iso(m->gap_to, to);
		printf("backfill     %lld missed action(s) recovered, from %s to %s\n",
		       (long long)m->recovered, from, to);
	} else {
		printf("backfill     nothing missed so far\n");
	}
	printf("last pass    %s%s\n", at, m->error ? " (failed)" : "");
	if (m->error)
		printf("pass error   %s\n", m->error);
}

/* The pass's progress on stderr (a terminal only). */
static void on_progress(void *ctx, size_t done, size_t total)
{
	cli_progress *p = ctx;
	cli_progress_set(p, done, total ? total : done);
}

static json_t *result_json(const char *id, const backfill_result *r)
{
	json_t *o = json_object();
	if (!o)
		return NULL;
	json_object_set_new(o, "webhook_id", json_string(id));
	json_object_set_new(o, "since", json_string(r->since));
	json_object_set_new(o, "clamped", json_boolean(r->clamped));
	json_object_set_new(o, "listed", json_integer((json_int_t)r->listed));
	json_object_set_new(o, "recovered", json_integer((json_int_t)r->recovered));
	json_object_set_new(o, "duplicates", json_integer((json_int_t)r->duplicates));
	json_object_set_new(o, "gap_from", cli_jtime(r->gap_from));
	json_object_set_new(o, "gap_to", cli_jtime(r->gap_to));
	json_object_set_new(o, "error", r->error[0] ? json_string(r->error) : json_null());
	return o;
}

int cmd_webhook_backfill(cli *c, int argc, char **argv)
{
	const char *id = NULL;
	backfill_opts o = BACKFILL_OPTS_INIT;
	const cli_flag flags[] = {CLI_STR("--since", &o.since)};
	svc_ctx *sc;
	trello_client *tc;
	int rc = CLI_PARSE(c, argc, argv, flags, &id,
	                   "webhook backfill: expected one webhook id (see webhook ls)");
	if (rc || (rc = cli_svc_trello(c, &sc, &tc)))
		return rc;
	cli_progress p;
	cli_progress_init(&p, stderr, "backfill: actions");
	/* a long outage may take many pages, each within Trello's rate limits */
	trello_client_set_deadline(tc, BACKFILL_CLI_BUDGET_MS);
	trello_client_set_notice(tc, CLI_TRELLO_NOTICE_MS, cli_trello_notice, &p);
	o.progress = on_progress;
	o.progress_ctx = &p;
	backfill_result r;
	th_error err = {0, {0}};
	rc = svc_backfill_webhook(sc, tc, id, &o, &r, &err);
	cli_progress_end(&p);
	trello_client_free(tc);
	if (rc && !r.since[0])
		return cli_fail_err(&err); /* refused before anything was asked of Trello */
	if (r.clamped)
		fprintf(stderr,
		        "trellohook: note: listed from %s only (TRELLOHOOK_BACKFILL_MAX_AGE bounds "
		        "how far back a pass reaches)\n",
		        r.since);
	if (c->json) {
		int jrc = cli_print_json(result_json(id, &r));
		if (rc)
			cli_fail_err(&err);
		return rc ? EXIT_FAIL : jrc;
	}
	char from[32], to[32];
	time_format_iso(r.gap_from, from);
	time_format_iso(r.gap_to, to);
	if (r.recovered)
		printf("webhook %s: recovered %zu missed action(s) from %s to %s (%zu listed "
		       "since %s, %zu already stored)\n",
		       id, r.recovered, from, to, r.listed, r.since, r.duplicates);
	else
		printf("webhook %s: nothing missed (%zu listed since %s, all already stored)\n", id,
		       r.listed, r.since);
	if (rc)
		return cli_fail_err(&err);
	return EXIT_OK;
}
