/* SPDX-License-Identifier: MIT */
/* cmd_deliveries.c — deliveries ls / retry, events replay. */
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "service/service.h"
#include "service/handlers.h"

static json_t *status_json(const void *rec)
{
	return cli_jstr(delivery_status_name(((const delivery *)rec)->status));
}

/* last_error holds captured output: kept if jansson accepts it (valid UTF-8) */
static json_t *last_error_json(const void *rec)
{
	const char *e = ((const delivery *)rec)->last_error;
	json_t *le = e ? json_string(e) : json_null();
	return le ? le : json_string("(output not valid UTF-8)");
}

/* A delivery as JSON (INTERFACE.md field names). */
static const cli_jfield delivery_fields[] = {CLI_JSTR(delivery, id),
                                             CLI_JSTR(delivery, event_id),
                                             CLI_JSTR(delivery, handler_id),
                                             CLI_JFN("status", status_json),
                                             CLI_JINT(delivery, attempts),
                                             CLI_JTIME(delivery, next_attempt_at),
                                             CLI_JFN("last_error", last_error_json),
                                             CLI_JTIME(delivery, updated_at)};

static json_t *delivery_json(const void *item, void *ctx)
{
	(void)ctx;
	return CLI_JSON_RECORD(item, delivery_fields);
}

static void delivery_row(const void *item, void *ctx, const char **cells, cli_cell_buf *scratch)
{
	const delivery *d = item;
	(void)ctx;
	str_copy(scratch[5], sizeof scratch[5], "-");
	if (d->next_attempt_at && (d->status == DELIVERY_PENDING || d->status == DELIVERY_FAILED))
		time_format_iso(d->next_attempt_at, scratch[5]);
	str_printf(scratch[4], sizeof scratch[4], "%d", d->attempts);
	/* the first line of the error or output; the column cuts it */
	const char *e = d->last_error ? d->last_error : "";
	str_printf(scratch[6], sizeof scratch[6], "%.*s", (int)strcspn(e, "\n"), e);
	const char *row[] = {d->id,       delivery_status_name(d->status),
	                     d->event_id, d->handler_id,
	                     scratch[4],  scratch[5],
	                     scratch[6]};
	memcpy(cells, row, sizeof row);
}

static const cli_col delivery_cols[] = {
    {"ID", 0, false},      {"STATUS", 0, false}, {"EVENT", 0, false}, {"HANDLER", 0, false},
    {"ATTEMPTS", 0, true}, {"NEXT", 0, false},   {"ERROR", 60, false}};

/* --status: a status name, checked as it comes. */
static int take_status(void *dst, const char *name, const char *v)
{
	enum delivery_status s;
	if (delivery_status_parse(v, &s))
		return cli_fail(EXIT_USAGE,
		                "%s: expected pending, running, done, failed or dead, got '%s'",
		                name, v);
	*(const char **)dst = v;
	return 0;
}

int cmd_deliveries_ls(cli *c, int argc, char **argv)
{
	const char *status = NULL, *event_id = NULL;
	int64_t limit = 100;
	const cli_flag flags[] = {CLI_FN("--status", take_status, &status),
	                          CLI_STR("--event", &event_id),
	                          CLI_INT("--limit", &limit, 1, 1000)};
	svc_ctx *sc;
	int rc = CLI_PARSE(c, argc, argv, flags, NULL, NULL);
	if (rc || (rc = cli_svc(c, &sc)))
		return rc;
	delivery *ds = NULL;
	size_t n = 0;
	th_error err = {0, {0}};
	if (svc_delivery_list(sc, status, event_id, (size_t)limit, &ds, &n, &err))
		return cli_fail_err(&err);
	const cli_list l =
	    CLI_LIST_OF(delivery_cols, delivery_json, delivery_row,
	                status || event_id ? "no deliveries match" : "no deliveries yet", NULL);
	rc = cli_print_list(c, ds, n, sizeof *ds, &l);
	delivery_list_free(ds, n);
	return rc;
}

int cmd_deliveries_retry(cli *c, int argc, char **argv)
{
	svc_ctx *sc;
	int rc = cli_svc_one(c, argc, "delivery id (see deliveries ls)", &sc);
	if (rc)
		return rc;
	th_error err = {0, {0}};
	if (handlers_delivery_retry(sc, argv[0], &err))
		return cli_fail(err.code == TH_ECONFIG ? EXIT_USAGE : EXIT_FAIL, "%s", err.msg);
	return cli_done(c, json_pack("{s:s,s:s}", "id", argv[0], "status", "pending"),
	                "delivery %s is pending again\n", argv[0]);
}

int cmd_events_replay(cli *c, int argc, char **argv)
{
	svc_ctx *sc;
	int rc = cli_svc_one(c, argc, "event id (see events ls)", &sc);
	if (rc)
		return rc;
	size_t n = 0;
	th_error err = {0, {0}};
	if (handlers_event_replay(sc, argv[0], &n, &err))
		return cli_fail(err.code == TH_ECONFIG ? EXIT_USAGE : EXIT_FAIL, "%s", err.msg);
	return cli_done(c, json_pack("{s:s,s:I}", "event_id", argv[0], "deliveries", (json_int_t)n),
	                "event %s replayed: %zu new deliver%s\n", argv[0], n, n == 1 ? "y" : "ies");
}
