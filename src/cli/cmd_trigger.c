/* SPDX-License-Identifier: MIT */
/* cmd_trigger.c — `trellohook trigger TYPE [--webhook ID] [--set PATH=VALUE]...`
 * and `trigger --list`. Only parses flags; service/trigger.c does the work. */
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "service/trigger.h"

#define TRIGGER_MAX_SETS 64

static json_t *template_json(const void *item, void *ctx)
{
	const trigger_template *t = item;
	(void)ctx;
	return json_pack("{s:s,s:s,s:s}", "type", t->name, "action_type", t->action_type,
	                 "description", t->description);
}

static void template_row(const void *item, void *ctx, const char **cells, cli_cell_buf *scratch)
{
	const trigger_template *t = item;
	(void)ctx;
	(void)scratch;
	cells[0] = t->name;
	cells[1] = t->description;
}

static const cli_col template_cols[] = {{"TYPE", 0, false}, {"DESCRIPTION", 0, false}};
static const cli_list template_list =
    CLI_LIST_OF(template_cols, template_json, template_row, NULL, NULL);

/* `trigger --list`: the types it can send, as a table or a JSON array. */
static int list_types(const cli *c)
{
	return cli_print_list(c, trigger_templates, trigger_ntemplates, sizeof *trigger_templates,
	                      &template_list);
}

int cmd_trigger(cli *c, int argc, char **argv)
{
	trigger_opts o;
	memset(&o, 0, sizeof o);
	const char *sets[TRIGGER_MAX_SETS];
	cli_strs sl = {sets, 0, TRIGGER_MAX_SETS};
	bool list = false;
	const cli_flag flags[] = {CLI_BOOL("--list", &list), CLI_STR("--webhook", &o.webhook_id),
	                          CLI_LIST("--set", &sl, NULL)};
	int rc = CLI_PARSE(c, argc, argv, flags, &o.name, NULL);
	if (rc)
		return rc;
	o.nsets = sl.n;
	if (list) {
		if (o.name || o.webhook_id || o.nsets)
			return cli_fail(EXIT_USAGE, "trigger --list takes no other arguments");
		return list_types(c);
	}
	if (!o.name)
		return cli_fail(EXIT_USAGE,
		                "trigger: an action type is needed, e.g. `trellohook trigger "
		                "commentCard` (see trigger --list)");
	o.sets = sets;
	th_error err = {0, {0}};
	if (trigger_check_name(o.name, &err)) {
		/* the whole list: longer than a th_error message holds */
		buf names;
		buf_init(&names, 2048);
		for (size_t i = 0; i < trigger_ntemplates; i++)
			if (buf_printf(&names, "%s%s", i ? ", " : "", trigger_templates[i].name))
				break;
		int r =
		    cli_fail(EXIT_USAGE, "%s; one of: %s", err.msg, names.data ? names.data : "");
		buf_free(&names);
		return r;
	}
	svc_ctx *sc;
	if ((rc = cli_svc_need(c, NEED_API_SECRET, &sc)) != 0)
		return rc;
	trigger_result r;
	if (trigger_send(sc, &o, &r, &err)) {
		trigger_result_clear(&r);
		return cli_fail_err(&err);
	}
	if (c->json) {
		rc = cli_print_json(json_pack(
		    "{s:I,s:s,s:s,s:s,s:s,s:o,s:o}", "status", (json_int_t)r.status, "answer",
		    r.answer, "webhook_id", r.webhook_id, "callback_url", r.callback_url,
		    "action_id", r.action_id, "event_id",
		    cli_jstr(r.event_id[0] ? r.event_id : NULL), "summary", cli_jstr(r.summary)));
	} else {
		printf("POST %s -> %ld %s\n", r.callback_url, r.status, r.answer);
		if (r.event_id[0])
			printf("stored event %s (action %s): %s\n", r.event_id, r.action_id,
			       r.summary ? r.summary : "");
		else if (r.status == 200)
			printf("action %s was accepted but is not in this store (DATABASE_URL?)\n",
			       r.action_id);
		rc = fflush(stdout) ? EXIT_FAIL : EXIT_OK;
	}
	if (rc == EXIT_OK && r.status != 200)
		rc = cli_fail(EXIT_FAIL, "trigger: %s answered %ld%s%s", r.callback_url, r.status,
		              r.answer[0] ? ": " : "", r.answer);
	trigger_result_clear(&r);
	return rc;
}
