/* SPDX-License-Identifier: MIT */
/* cmd_token.c — token add / ls / check / rm. Tokens are only ever printed masked. */
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "service/service.h"

static json_t *token_json(const token *t, size_t webhooks)
{
	json_t *o = json_object();
	if (!o)
		return NULL;
	char masked[32];
	mask_secret(t->token ? t->token : "", masked, sizeof masked);
	json_object_set_new(o, "token", json_string(masked));
	json_object_set_new(o, "member", cli_jstr(t->member));
	json_object_set_new(o, "expires_at", cli_jtime(t->expires_at));
	json_object_set_new(o, "state", json_string(token_state_name(t->state)));
	json_object_set_new(o, "checked_at", cli_jtime(t->checked_at));
	json_object_set_new(o, "webhooks", json_integer((json_int_t)webhooks));
	return o;
}

static int check_shape(const char *tok)
{
	if (!str_is_trello_token(tok))
		return cli_fail(EXIT_USAGE,
		                "expected a Trello user token (64 hex characters, or ATTA "
		                "followed by 72 hex characters)");
	return 0;
}

/* token add / rm: exactly one argument, shaped like a token; then @op on it
 * (cli_svc_op()). Prints what was wrong and returns its exit code, else 0. */
static int one_token(cli *c, int argc, char **argv, cli_id_op op, svc_ctx **sc)
{
	if (argc != 1)
		return argc ? cli_unexpected(c, argv[1 % argc])
		            : cli_fail(EXIT_USAGE, "%s: expected one token", c->prog);
	int rc = check_shape(argv[0]);
	return rc ? rc : cli_svc_op(c, op, argv[0], sc);
}

/* Webhooks per token (plain text compare). */
static size_t count_webhooks(const webhook *ws, size_t n, const char *tok)
{
	size_t k = 0;
	for (size_t i = 0; i < n; i++)
		k += str_eq(ws[i].token, tok);
	return k;
}

int cmd_token_add(cli *c, int argc, char **argv)
{
	svc_ctx *sc;
	int rc = one_token(c, argc, argv, svc_token_remember, &sc);
	if (rc)
		return rc;
	th_error err = {0, {0}};
	token t;
	if (svc_token_find(sc, argv[0], &t, NULL, &err))
		return cli_fail_err(&err);
	if (c->json) {
		rc = cli_print_json(token_json(&t, 0));
	} else {
		char masked[32];
		mask_secret(argv[0], masked, sizeof masked);
		printf("token %s stored (%s); `trellohook token check` asks Trello about it\n",
		       masked, token_state_name(t.state));
	}
	token_clear(&t);
	return rc;
}

/* token ls: the webhook list rides along to count each token's webhooks. */
typedef struct token_ls_ctx {
	const webhook *ws;
	size_t nw;
} token_ls_ctx;

static json_t *token_item_json(const void *item, void *ctx)
{
	const token_ls_ctx *x = ctx;
	const token *t = item;
	return token_json(t, count_webhooks(x->ws, x->nw, t->token));
}

static void token_row(const void *item, void *ctx, const char **cells, cli_cell_buf *scratch)
{
	const token_ls_ctx *x = ctx;
	const token *t = item;
	mask_secret(t->token ? t->token : "", scratch[0], sizeof scratch[0]);
	if (t->expires_at)
		time_format_iso(t->expires_at, scratch[3]);
	else
		str_copy(scratch[3], sizeof scratch[3], t->state == TOKEN_VALID ? "never" : "-");
	str_printf(scratch[4], sizeof scratch[4], "%zu", count_webhooks(x->ws, x->nw, t->token));
	bool dead = t->state == TOKEN_EXPIRED || t->state == TOKEN_INVALID;
	const char *row[] = {scratch[0], token_state_name(t->state),
	                     t->member,  scratch[3],
	                     scratch[4], dead ? "needs a new token; its webhooks are flagged" : ""};
	memcpy(cells, row, sizeof row);
}

static const cli_col token_cols[] = {{"TOKEN", 0, false},   {"STATE", 0, false},
                                     {"MEMBER", 26, false}, {"EXPIRES", 0, false},
                                     {"WEBHOOKS", 0, true}, {"NOTE", 0, false}};

int cmd_token_ls(cli *c, int argc, char **argv)
{
	svc_ctx *sc;
	int rc = cli_svc_noargs(c, argc, argv, &sc);
	if (rc)
		return rc;
	token *ts = NULL;
	webhook *ws = NULL;
	size_t n = 0, nw = 0;
	th_error err = {0, {0}};
	if (svc_token_list(sc, &ts, &n, &err))
		return cli_fail_err(&err);
	if (svc_webhook_list(sc, &ws, &nw, &err)) {
		token_list_free(ts, n);
		return cli_fail_err(&err);
	}
	token_ls_ctx x = {ws, nw};
	const cli_list l = CLI_LIST_OF(token_cols, token_item_json, token_row,
	                               "no tokens yet (token add TOKEN, or webhook add)", &x);
	rc = cli_print_list(c, ts, n, sizeof *ts, &l);
	token_list_free(ts, n);
	webhook_list_free(ws, nw);
	return rc;
}

int cmd_token_check(cli *c, int argc, char **argv)
{
	if (argc > 1)
		return cli_unexpected(c, argv[1]);
	if (argc == 1 && check_shape(argv[0]))
		return EXIT_USAGE;
	svc_ctx *sc;
	int rc = cli_svc(c, &sc);
	if (rc)
		return rc;
	th_error err = {0, {0}};
	token *ts = NULL;
	size_t n = 0;
	if (argc == 0) {
		if (svc_token_list(sc, &ts, &n, &err))
			return cli_fail_err(&err);
		if (!n) {
			token_list_free(ts, n);
			return cli_fail(EXIT_FAIL,
			                "no tokens stored (token add TOKEN, or give one: token "
			                "check TOKEN)");
		}
	}
	trello_client *tc = NULL;
	int crc = cli_trello_client(sc, &tc);
	if (crc) {
		token_list_free(ts, n);
		return crc;
	}
	size_t count = argc ? 1 : n;
	json_t *arr = c->json ? json_array() : NULL;
	int worst = EXIT_OK;
	for (size_t i = 0; i < count; i++) {
		const char *tok = argc ? argv[0] : ts[i].token;
		token res;
		trello_token_info info;
		th_error cerr = {0, {0}};
		char masked[32];
		mask_secret(tok, masked, sizeof masked);
		if (svc_token_check(sc, tc, tok, &res, &info, &cerr)) {
			fprintf(stderr, "trellohook: token %s: %s\n", masked, cerr.msg);
			worst = EXIT_FAIL;
			if (arr) {
				json_t *o = json_object();
				json_object_set_new(o, "token", json_string(masked));
				json_object_set_new(o, "state", json_string("unchecked"));
				json_object_set_new(o, "error", json_string(cerr.msg));
				json_array_append_new(arr, o);
			}
			continue;
		}
		if (res.state != TOKEN_VALID)
			worst = EXIT_FAIL;
		if (arr) {
			json_t *o = token_json(&res, 0);
			json_object_del(o, "webhooks");
			json_t *perms = json_array();
			for (size_t k = 0; perms && k < info.npermissions; k++) {
				json_t *p = json_object();
				json_object_set_new(p, "id_model",
				                    cli_jstr(info.permissions[k].id_model));
				json_object_set_new(p, "model_type",
				                    cli_jstr(info.permissions[k].model_type));
				json_object_set_new(p, "read",
				                    json_boolean(info.permissions[k].read));
				json_object_set_new(p, "write",
				                    json_boolean(info.permissions[k].write));
				json_array_append_new(perms, p);
			}
			json_object_set_new(o, "permissions", perms ? perms : json_null());
			json_array_append_new(arr, o);
		} else {
			char exp[32];
			if (res.expires_at)
				time_format_iso(res.expires_at, exp);
			else
				str_copy(exp, sizeof exp, "never");
			if (res.state == TOKEN_VALID) {
				printf("%s  valid  member %s  expires %s  permissions", masked,
				       res.member ? res.member : "-", exp);
				for (size_t k = 0; k < info.npermissions; k++)
					printf(" %s:%s%s",
					       info.permissions[k].model_type
					           ? info.permissions[k].model_type
					           : "?",
					       info.permissions[k].read ? "r" : "",
					       info.permissions[k].write ? "w" : "");
				printf("\n");
			} else {
				printf(
				    "%s  %s  — Trello refuses it; its webhooks are flagged needs-token\n",
				    masked, token_state_name(res.state));
			}
		}
		token_clear(&res);
		trello_token_info_clear(&info);
	}
	trello_client_free(tc);
	token_list_free(ts, n);
	if (arr) {
		json_t *doc = argc ? json_incref(json_array_get(arr, 0)) : json_incref(arr);
		json_decref(arr);
		int prc = cli_print_json(doc);
		if (prc)
			return prc;
	}
	if (worst && !c->json && count > 1)
		fprintf(stderr,
		        "trellohook: some tokens are expired, invalid or could not be checked\n");
	return worst;
}

int cmd_token_rm(cli *c, int argc, char **argv)
{
	int rc = one_token(c, argc, argv, svc_token_remove, NULL);
	if (rc)
		return rc;
	char masked[32];
	mask_secret(argv[0], masked, sizeof masked);
	printf("token %s removed\n", masked);
	return EXIT_OK;
}
