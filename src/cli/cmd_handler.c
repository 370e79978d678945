/* SPDX-License-Identifier: MIT */
/* cmd_handler.c — handler add / ls / rm. */
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "service/service.h"
#include "service/handlers.h"

/* A handler as JSON (INTERFACE.md field names). The forward secret only when
 * @secret is given: in full once at creation, masked in listings. */
static json_t *kind_json(const void *rec)
{
	return cli_jstr(handler_kind_name(((const handler *)rec)->kind));
}

static const cli_jfield handler_fields[] = {
    CLI_JSTR(handler, id),         CLI_JFN("kind", kind_json), CLI_JSTR(handler, target),
    CLI_JSTR(handler, on),         CLI_JSTR(handler, model),   CLI_JBOOL(handler, enabled),
    CLI_JTIME(handler, created_at)};

static json_t *handler_json(const handler *h, const char *secret)
{
	json_t *o = CLI_JSON_RECORD(h, handler_fields);
	if (o && secret)
		json_object_set_new(o, "secret", cli_jstr(secret));
	return o;
}

int cmd_handler_add(cli *c, int argc, char **argv)
{
	handler_spec spec = {.kind = HANDLER_EXEC};
	const char *exec_cmd = NULL, *url = NULL;
	const cli_flag flags[] = {CLI_STR("--exec", &exec_cmd), CLI_STR("--forward", &url),
	                          CLI_STR("--on", &spec.on), CLI_STR("--model", &spec.model)};
	int rc = CLI_PARSE(c, argc, argv, flags, NULL, NULL);
	if (rc)
		return rc;
	if (!!exec_cmd == !!url)
		return cli_fail(EXIT_USAGE, "handler add: give exactly one of --exec COMMAND or "
		                            "--forward URL");
	spec.kind = exec_cmd ? HANDLER_EXEC : HANDLER_FORWARD;
	spec.target = exec_cmd ? exec_cmd : url;
	th_error err = {0, {0}};
	/* validate before opening the store: usage errors exit 2 without side effects */
	if ((spec.on && handlers_check_on(spec.on, &err)) || (url && handlers_check_url(url, &err)))
		return cli_fail(EXIT_USAGE, "%s", err.msg);
	if (spec.model && !str_is_trello_id(spec.model))
		return cli_fail(EXIT_USAGE,
		                "--model: expected a 24-hex Trello id of a board, list or "
		                "card, e.g. 5f0c1e2d3b4a596877665544");
	svc_ctx *sc;
	if ((rc = cli_svc(c, &sc)) != 0)
		return rc;
	handler h;
	if (handlers_add(sc, &spec, &h, &err))
		return cli_fail_err(&err);
	if (c->json) {
		rc = cli_print_json(handler_json(&h, h.secret));
	} else {
		printf("handler %s added (%s %s)\n", h.id, handler_kind_name(h.kind), h.target);
		if (h.secret)
			printf(
			    "signing secret (shown once, keep it to verify webhook-signature): %s\n",
			    h.secret);
		rc = EXIT_OK;
	}
	handler_clear(&h);
	return rc;
}

/* Listings show a forward secret masked, never whole. */
static json_t *handler_item_json(const void *item, void *ctx)
{
	const handler *h = item;
	char masked[64];
	(void)ctx;
	if (h->secret)
		mask_secret(h->secret, masked, sizeof masked);
	return handler_json(h, h->secret ? masked : NULL);
}

static void handler_row(const void *item, void *ctx, const char **cells, cli_cell_buf *scratch)
{
	const handler *h = item;
	(void)ctx;
	scratch[5][0] = '\0';
	if (h->secret)
		mask_secret(h->secret, scratch[5], sizeof scratch[5]);
	const char *row[] = {h->id,
	                     handler_kind_name(h->kind),
	                     h->enabled ? "enabled" : "DISABLED",
	                     h->on ? h->on : "*",
	                     h->model ? h->model : "*",
	                     h->secret ? scratch[5] : "-",
	                     h->target};
	memcpy(cells, row, sizeof row);
}

static const cli_col handler_cols[] = {
    {"ID", 0, false},    {"KIND", 0, false},   {"STATE", 0, false},  {"ON", 30, false},
    {"MODEL", 0, false}, {"SECRET", 0, false}, {"TARGET", 60, false}};
static const cli_list handler_list =
    CLI_LIST_OF(handler_cols, handler_item_json, handler_row,
                "no handlers yet (see trellohook handler add --help)", NULL);

int cmd_handler_ls(cli *c, int argc, char **argv)
{
	svc_ctx *sc;
	handler *hs = NULL;
	size_t n = 0;
	th_error err = {0, {0}};
	int rc = cli_svc_noargs(c, argc, argv, &sc);
	if (rc || (rc = svc_handler_list(sc, &hs, &n, &err) ? cli_fail_err(&err) : 0))
		return rc;
	rc = cli_print_list(c, hs, n, sizeof *hs, &handler_list);
	handler_list_free(hs, n);
	return rc;
}

int cmd_handler_rm(cli *c, int argc, char **argv)
{
	int rc = cli_one_arg(c, argc, "handler id (see handler ls)");
	if (!rc)
		rc = cli_svc_op(c, handlers_remove, argv[0], NULL);
	return rc ? rc
	          : cli_done(c, json_pack("{s:s,s:b}", "id", argv[0], "removed", 1),
	                     "handler %s removed\n", argv[0]);
}
