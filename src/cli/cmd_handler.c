/* cmd_handler.c — handler add / ls / rm. */
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "service/service.h"
#include "service/handlers.h"

/* A handler as JSON (INTERFACE.md field names). The forward secret only when
 * @secret is given: in full once at creation, masked in listings. */
static json_t *handler_json(const handler *h, const char *secret)
{
	json_t *o = json_object();
	if (!o)
		return NULL;
	json_object_set_new(o, "id", cli_jstr(h->id));
	json_object_set_new(o, "kind", cli_jstr(handler_kind_name(h->kind)));
	json_object_set_new(o, "target", cli_jstr(h->target));
	json_object_set_new(o, "on", cli_jstr(h->on));
	json_object_set_new(o, "model", cli_jstr(h->model));
	json_object_set_new(o, "enabled", json_boolean(h->enabled));
	json_object_set_new(o, "created_at", cli_jtime(h->created_at));
	if (secret)
		json_object_set_new(o, "secret", cli_jstr(secret));
	return o;
}

int cmd_handler_add(cli *c, int argc, char **argv)
{
	handler_spec spec = {.kind = HANDLER_EXEC};
	const char *exec_cmd = NULL, *url = NULL;
	for (int i = 0; i < argc; i++) {
		const char *v = NULL;
		int t;
		if ((t = cli_take_value(argc, argv, &i, "--exec", &v))) {
			if (t < 0)
				return EXIT_USAGE;
			exec_cmd = v;
		} else if ((t = cli_take_value(argc, argv, &i, "--forward", &v))) {
			if (t < 0)
				return EXIT_USAGE;
			url = v;
		} else if ((t = cli_take_value(argc, argv, &i, "--on", &v))) {
			if (t < 0)
				return EXIT_USAGE;
			spec.on = v;
		} else if ((t = cli_take_value(argc, argv, &i, "--model", &v))) {
			if (t < 0)
				return EXIT_USAGE;
			spec.model = v;
		} else {
			return cli_unexpected(c, argv[i]);
		}
	}
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
	int rc = cli_svc(c, &sc);
	if (rc)
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

int cmd_handler_ls(cli *c, int argc, char **argv)
{
	svc_ctx *sc;
	int rc = cli_svc_noargs(c, argc, argv, &sc);
	if (rc)
		return rc;
	handler *hs = NULL;
	size_t n = 0;
	th_error err = {0, {0}};
	if (svc_handler_list(sc, &hs, &n, &err))
		return cli_fail_err(&err);
	if (c->json) {
		json_t *arr = json_array();
		for (size_t i = 0; arr && i < n; i++) {
			char masked[64];
			if (hs[i].secret)
				mask_secret(hs[i].secret, masked, sizeof masked);
			json_array_append_new(arr,
			                      handler_json(&hs[i], hs[i].secret ? masked : NULL));
		}
		handler_list_free(hs, n);
		return cli_print_json(arr);
	}
	if (!n)
		fprintf(stderr, "no handlers yet (see trellohook handler add --help)\n");
	for (size_t i = 0; i < n; i++) {
		char masked[64] = "";
		if (hs[i].secret)
			mask_secret(hs[i].secret, masked, sizeof masked);
		printf("%s  %-7s %-8s on=%s model=%s%s%s  %s\n", hs[i].id,
		       handler_kind_name(hs[i].kind), hs[i].enabled ? "enabled" : "DISABLED",
		       hs[i].on ? hs[i].on : "*", hs[i].model ? hs[i].model : "*",
		       masked[0] ? " secret=" : "", masked, hs[i].target);
	}
	handler_list_free(hs, n);
	return EXIT_OK;
}

int cmd_handler_rm(cli *c, int argc, char **argv)
{
	if (argc != 1)
		return cli_fail(EXIT_USAGE, "handler rm: expected one handler id (see handler ls)");
	svc_ctx *sc;
	int rc = cli_svc(c, &sc);
	if (rc)
		return rc;
	th_error err = {0, {0}};
	if (handlers_remove(sc, argv[0], &err))
		return cli_fail_err(&err);
	if (c->json)
		return cli_print_json(json_pack("{s:s,s:b}", "id", argv[0], "removed", 1));
	printf("handler %s removed\n", argv[0]);
	return EXIT_OK;
}
