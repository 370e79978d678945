/* SPDX-License-Identifier: MIT */
/* cli.c — helpers shared by the commands: errors, the service, JSON output (records
 * by field table), lists, and the flag tables of their arguments. */
#include <stdarg.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/progress.h"
#include "service/service.h"

int cli_fail(int code, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	fprintf(stderr, "trellohook: %s\n", msg);
	return code;
}

int cli_fail_err(const th_error *err)
{
	int code = (err->code == TH_ECONFIG || err->code == TH_EINVAL) ? EXIT_USAGE : EXIT_FAIL;
	return cli_fail(code, "%s", err->msg[0] ? err->msg : "failed");
}

/* trello_notice_fn of command clients: one line, once, while still waiting.
 * @ctx: NULL, or the command's cli_progress, whose line is erased first. */
void cli_trello_notice(void *ctx, const char *what)
{
	if (ctx)
		cli_progress_end(ctx);
	fprintf(stderr, "trellohook: %s; giving up after %d s\n", what,
	        CLI_TRELLO_BUDGET_MS / 1000);
	fflush(stderr);
}

/* A command's bounded Trello client; see cli.h. */
int cli_trello_client(svc_ctx *sc, trello_client **out)
{
	th_error err = {0, {0}};
	if (svc_trello_client(sc, out, &err))
		return cli_fail_err(&err);
	trello_client_set_deadline(*out, CLI_TRELLO_BUDGET_MS);
	trello_client_set_notice(*out, CLI_TRELLO_NOTICE_MS, cli_trello_notice, NULL);
	return 0;
}

int cli_svc_trello(cli *c, svc_ctx **sc, trello_client **tc)
{
	*tc = NULL;
	int rc = cli_svc(c, sc);
	return rc ? rc : cli_trello_client(*sc, tc);
}

int cli_app(cli *c, app **out)
{
	if (!c->a) {
		th_error err = {0, {0}};
		if (app_new(&c->a, &c->cfg, &err)) {
			/* a store that cannot be opened is an operational failure, a bad URL a
			 * config one */
			cli_fail(err.code == TH_ECONFIG ? EXIT_USAGE : EXIT_FAIL, "%s", err.msg);
			return err.code == TH_ECONFIG ? EXIT_USAGE : EXIT_FAIL;
		}
	}
	*out = c->a;
	return 0;
}

int cli_svc(cli *c, svc_ctx **out)
{
	app *a;
	int rc = cli_app(c, &a);
	*out = rc ? NULL : app_svc(a);
	return rc;
}

int cli_svc_need(cli *c, unsigned needs, svc_ctx **out)
{
	th_error err = {0, {0}};
	*out = NULL;
	if (config_require(&c->cfg, needs, &err))
		return cli_fail_err(&err);
	return cli_svc(c, out);
}

int cli_one_arg(const cli *c, int argc, const char *what)
{
	return argc == 1 ? 0 : cli_fail(EXIT_USAGE, "%s: expected one %s", c->prog, what);
}

int cli_svc_one(cli *c, int argc, const char *what, svc_ctx **out)
{
	int rc = cli_one_arg(c, argc, what);
	return rc ? rc : cli_svc(c, out);
}

int cli_svc_op(cli *c, cli_id_op op, const char *id, svc_ctx **sc)
{
	svc_ctx *s;
	th_error err = {0, {0}};
	int rc = cli_svc(c, &s);
	if (!rc && op(s, id, &err))
		rc = cli_fail_err(&err);
	if (sc)
		*sc = s;
	return rc;
}

int cli_svc_noargs(cli *c, int argc, char **argv, svc_ctx **out)
{
	if (argc)
		return cli_unexpected(c, argv[0]);
	return cli_svc(c, out);
}

int cli_print_json(json_t *doc)
{
	if (!doc)
		return cli_fail(EXIT_FAIL, "out of memory");
	char *text = json_dumps(doc, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	json_decref(doc);
	if (!text)
		return cli_fail(EXIT_FAIL, "cannot encode JSON output");
	puts(text);
	free(text);
	return fflush(stdout) ? EXIT_FAIL : 0;
}

int cli_done(const cli *c, json_t *doc, const char *fmt, ...)
{
	if (c->json)
		return cli_print_json(doc);
	json_decref(doc);
	va_list ap;
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	return fflush(stdout) ? EXIT_FAIL : EXIT_OK;
}

int cli_print_list(const cli *c, const void *items, size_t n, size_t size, const cli_list *l)
{
	const char *base = items;
	if (c->json) {
		json_t *arr = json_array();
		for (size_t i = 0; arr && i < n; i++) {
			json_t *o = l->json(base + i * size, l->ctx);
			if (!o || json_array_append_new(arr, o)) {
				json_decref(arr);
				arr = NULL;
			}
		}
		return cli_print_json(arr);
	}
	cli_table *t = NULL;
	if (cli_table_new(&t, l->cols, l->ncols))
		return cli_fail(EXIT_FAIL, "out of memory");
	for (size_t i = 0; i < n; i++) {
		const char *cells[CLI_TABLE_MAX_COLS] = {0};
		cli_cell_buf scratch[CLI_TABLE_MAX_COLS];
		l->row(base + i * size, l->ctx, cells, scratch);
		if (cli_table_add(t, cells)) {
			cli_table_free(t);
			return cli_fail(EXIT_FAIL, "out of memory");
		}
	}
	int rc = cli_table_print(t, stdout, !c->no_header);
	cli_table_free(t);
	if (!n && l->empty)
		fprintf(stderr, "%s\n", l->empty);
	return rc ? cli_fail(EXIT_FAIL, "cannot write the list to stdout") : EXIT_OK;
}

bool cli_is_flag(const char *arg, const char *flag)
{
	return str_eq(arg, flag);
}

/* If argv[*i] is @flag ("--x V" or "--x=V"): the value into *@out, *i past
 * it, 1; 0 if it is another flag; -1 if the value is missing (message
 * printed). */
static int take_value(int argc, char **argv, int *i, const char *flag, const char **out)
{
	const char *arg = argv[*i];
	size_t n = strlen(flag);
	if (strncmp(arg, flag, n) != 0)
		return 0;
	if (arg[n] == '=') {
		*out = arg + n + 1;
		return 1;
	}
	if (arg[n] != '\0')
		return 0;
	if (*i + 1 >= argc) {
		cli_fail(EXIT_USAGE, "%s needs a value", flag);
		return -1;
	}
	*out = argv[++*i];
	return 1;
}

/* A command's one positional argument (an id, a name): @arg into *@out when
 * it is no flag and none was taken yet, returning 0; else cli_unexpected(). */
static int take_arg(const cli *c, const char *arg, const char **out)
{
	if (*out || arg[0] == '-')
		return cli_unexpected(c, arg);
	*out = arg;
	return 0;
}

/* One flag of @f at argv[*i]: 1 taken (*i past its value), 0 not this flag,
 * or minus the exit code (message printed). */
static int take_flag(const cli *c, const cli_flag *f, int argc, char **argv, int *i)
{
	if (f->kind == CLI_FLAG_BOOL) {
		if (!cli_is_flag(argv[*i], f->name))
			return 0;
		*(bool *)f->dst = true;
		return 1;
	}
	const char *v = NULL;
	int t = take_value(argc, argv, i, f->name, &v);
	if (t <= 0)
		return t < 0 ? -EXIT_USAGE : 0;
	int rc = 0;
	cli_strs *l = f->dst;
	switch (f->kind) {
	case CLI_FLAG_STR: *(const char **)f->dst = v; break;
	case CLI_FLAG_FN: rc = f->fn(f->dst, f->name, v); break;
	case CLI_FLAG_LIST:
		if (l->n == l->max)
			rc = cli_fail(EXIT_USAGE, "%s: at most %zu %s", c->prog, l->max, f->name);
		else if (!f->fn || !(rc = f->fn(f->dst, f->name, v)))
			l->v[l->n++] = v;
		break;
	default:
		if (num_parse_i64(v, f->min, f->max, f->dst))
			rc = cli_fail(EXIT_USAGE,
			              "%s: expected a whole number from %lld to %lld, got '%s'",
			              f->name, (long long)f->min, (long long)f->max, v);
	}
	return rc ? -rc : 1;
}

int cli_parse_flags(const cli *c, int argc, char **argv, const cli_flag *f, size_t n,
                    const char **arg, const char *missing)
{
	for (int i = 0; i < argc; i++) {
		int t = 0;
		for (size_t k = 0; k < n && !t; k++)
			t = take_flag(c, &f[k], argc, argv, &i);
		if (t < 0)
			return -t;
		if (!t && (!arg || take_arg(c, argv[i], arg)))
			return arg ? EXIT_USAGE : cli_unexpected(c, argv[i]);
	}
	if (arg && !*arg && missing)
		return cli_fail(EXIT_USAGE, "%s", missing);
	return 0;
}

int cli_unexpected(const cli *c, const char *arg)
{
	return cli_fail(EXIT_USAGE, "%s: unexpected argument '%s' (see --help)", c->prog, arg);
}

json_t *cli_jstr(const char *s)
{
	return s ? json_string(s) : json_null();
}

json_t *cli_json_record(const void *rec, const cli_jfield *f, size_t n)
{
	json_t *o = json_object();
	const char *base = rec;
	for (size_t i = 0; o && i < n; i++) {
		const void *m = base + f[i].off;
		json_t *v;
		switch (f[i].kind) {
		case CLI_J_STR: v = cli_jstr(*(char *const *)m); break;
		case CLI_J_TIME: v = cli_jtime(*(const int64_t *)m); break;
		case CLI_J_BOOL: v = json_boolean(*(const bool *)m); break;
		case CLI_J_INT: v = json_integer(*(const int *)m); break;
		case CLI_J_I64: v = json_integer(*(const int64_t *)m); break;
		default: v = f[i].fn(rec);
		}
		json_object_set_new(o, f[i].key, v);
	}
	return o;
}

json_t *cli_event_source_json(const void *ev)
{
	return json_string(event_source_name(((const event *)ev)->source));
}

json_t *cli_jtime(int64_t ms)
{
	if (!ms)
		return json_null();
	char iso[32];
	time_format_iso(ms, iso);
	return json_string(iso);
}
