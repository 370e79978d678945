/* SPDX-License-Identifier: MIT */
/* cmd_deliveries.c — deliveries ls / retry, events replay. */
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "service/service.h"
#include "service/handlers.h"

/* A delivery as JSON (INTERFACE.md field names). */
static json_t *delivery_json(const void *item, void *ctx)
{
	const delivery *d = item;
	(void)ctx;
	json_t *o = json_object();
	if (!o)
		return NULL;
	json_object_set_new(o, "id", cli_jstr(d->id));
	json_object_set_new(o, "event_id", cli_jstr(d->event_id));
	json_object_set_new(o, "handler_id", cli_jstr(d->handler_id));
	json_object_set_new(o, "status", cli_jstr(delivery_status_name(d->status)));
	json_object_set_new(o, "attempts", json_integer(d->attempts));
	json_object_set_new(o, "next_attempt_at", cli_jtime(d->next_attempt_at));
	/* last_error holds captured output: keep it if jansson accepts it (valid UTF-8) */
	json_t *le = d->last_error ? json_string(d->last_error) : json_null();
	json_object_set_new(o, "last_error", le ? le : json_string("(output not valid UTF-8)"));
	json_object_set_new(o, "updated_at", cli_jtime(d->updated_at));
	return o;
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

int cmd_deliveries_ls(cli *c, int argc, char **argv)
{
	const char *status = NULL, *event_id = NULL;
	int64_t limit = 100;
	for (int i = 0; i < argc; i++) {
		const char *v = NULL;
		int t;
		if ((t = cli_take_value(argc, argv, &i, "--status", &v))) {
			enum delivery_status s;
			if (t < 0)
				return EXIT_USAGE;
			if (delivery_status_parse(v, &s))
				return cli_fail(EXIT_USAGE,
				                "--status: expected pending, running, done, failed "
				                "or dead, got '%s'",
				                v);
			status = v;
		} else if ((t = cli_take_value(argc, argv, &i, "--event", &v))) {
			if (t < 0)
				return EXIT_USAGE;
			event_id = v;
		} else if ((t = cli_take_value(argc, argv, &i, "--limit", &v))) {
			if (t < 0)
				return EXIT_USAGE;
			if (num_parse_i64(v, 1, 1000, &limit))
				return cli_fail(
				    EXIT_USAGE,
				    "--limit: expected a whole number from 1 to 1000, got '%s'", v);
		} else {
			return cli_unexpected(c, argv[i]);
		}
	}
	svc_ctx *sc;
	int rc = cli_svc(c, &sc);
	if (rc)
		return rc;
	delivery *ds = NULL;
	size_t n = 0;
	th_error err = {0, {0}};
	if (svc_delivery_list(sc, status, event_id, (size_t)limit, &ds, &n, &err))
		return cli_fail_err(&err);
	const cli_list l = {delivery_cols,
	                    TH_ARRAY_LEN(delivery_cols),
	                    delivery_json,
	                    delivery_row,
	                    status || event_id ? "no deliveries match" : "no deliveries yet",
	                    NULL};
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
