/* SPDX-License-Identifier: MIT */
/*
 * cmd_history.c — events export (JSON Lines, streamed) and events prune
 * (retention), both walking the store in bounded steps (service/history.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/progress.h"
#include "service/history.h"
#include "service/service.h"

#define MAX_AGE_MS ((int64_t)36500 * 86400000) /* 100 years: more is a typo */

/* A time given on the command line: an ISO 8601 UTC time
 * (2026-12-01T10:00:00Z, milliseconds allowed), a date (2026-12-01, its
 * midnight UTC) or a duration meaning that long before @now (7d, 36h). */
static int parse_when(const char *flag, const char *v, int64_t now, int64_t *out)
{
	int64_t ms;
	struct tm tm;
	memset(&tm, 0, sizeof tm);
	if (!time_parse_iso(v, out))
		return 0;
	if (!num_parse_duration_ms(v, &ms) && ms <= MAX_AGE_MS) {
		*out = now - ms;
		return 0;
	}
	const char *end = strptime(v, "%Y-%m-%d", &tm);
	if (end && !*end) {
		int mon = tm.tm_mon, mday = tm.tm_mday;
		time_t t = timegm(&tm);
		/* timegm moves 2026-02-31 to March: refuse dates that do not exist */
		if (t != (time_t)-1 && tm.tm_mon == mon && tm.tm_mday == mday) {
			*out = (int64_t)t * 1000;
			return 0;
		}
	}
	return cli_fail(EXIT_USAGE,
	                "%s: expected a UTC time such as 2026-12-01T10:00:00Z, a date such as "
	                "2026-12-01, or an age such as 7d or 36h; got '%s'",
	                flag, v);
}

/* ---- export ---------------------------------------------------------------------------- */

/* export stops cleanly on SIGINT/SIGTERM (no half file left); the flag is
 * this command's own. */
static volatile sig_atomic_t export_stop;
static void on_export_signal(int sig)
{
	export_stop = 1;
}

typedef struct export_out {
	FILE *f;
	const char *name; /* for messages: the file, or "standard output" */
	cli_progress prog;
	bool show;
	char *line; /* the line being built, reused */
	size_t cap;
} export_out;

/* Grow @x's line buffer to at least @need bytes. */
static int line_reserve(export_out *x, size_t need, th_error *err)
{
	if (need <= x->cap)
		return 0;
	size_t cap = x->cap ? x->cap : 4096;
	while (cap < need)
		cap *= 2;
	char *p = realloc(x->line, cap);
	if (!p)
		return th_err(err, TH_ENOMEM, "out of memory");
	x->line = p;
	x->cap = cap;
	return 0;
}

/* The listing fields of an exported event, in the order of its line. */
static const cli_jfield export_fields[] = {CLI_JSTR(event, id),
                                           CLI_JSTR(event, webhook_id),
                                           CLI_JSTR(event, action_id),
                                           CLI_JSTR(event, action_type),
                                           CLI_JSTR(event, action_date),
                                           CLI_JTIME(event, received_at),
                                           CLI_JFN("source", cli_event_source_json),
                                           CLI_JSTR(event, summary),
                                           CLI_JSTR(event, board_name),
                                           CLI_JSTR(event, list_name),
                                           CLI_JSTR(event, card_name)};

/* The event as one line: the listing fields, then the payload as the JSON
 * document received. A body that parses is written as its exact bytes (line
 * breaks, which JSON allows only between tokens, become spaces, so the line
 * stays one line); one that does not (never from Trello: it is refused with
 * 400) is written as a JSON string, or null when it is not UTF-8. */
static int export_event(void *ctx, const event *ev, th_error *err)
{
	export_out *x = ctx;
	if (export_stop)
		return th_err(err, TH_EIO, "interrupted");
	json_t *o = CLI_JSON_RECORD(ev, export_fields);
	if (!o)
		return th_err(err, TH_ENOMEM, "out of memory");
	json_t *doc =
	    ev->payload ? json_loadb(ev->payload, ev->payload_len, JSON_DECODE_ANY, NULL) : NULL;
	bool raw = doc != NULL;
	json_decref(doc);
	if (!raw) {
		json_t *p = ev->payload ? json_stringn(ev->payload, ev->payload_len) : NULL;
		json_object_set_new(o, "payload", p ? p : json_null());
	}
	char *head = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(o);
	if (!head)
		return th_err(err, TH_ENOMEM, "out of memory");
	size_t hl = strlen(head); /* ends with '}' */
	int ret = line_reserve(x, hl + ev->payload_len + 16, err);
	if (!ret) {
		size_t n = hl - 1;
		memcpy(x->line, head, n);
		if (raw) {
			memcpy(x->line + n, ",\"payload\":", 11);
			n += 11;
			for (size_t i = 0; i < ev->payload_len; i++) {
				char ch = ev->payload[i];
				x->line[n++] = ch == '\n' || ch == '\r' ? ' ' : ch;
			}
		}
		x->line[n++] = '}';
		x->line[n++] = '\n';
		if (fwrite(x->line, 1, n, x->f) != n)
			ret = th_err(err, TH_EIO, "writing to %s: %s", x->name, strerror(errno));
	}
	free(head);
	return ret;
}

static bool export_progress(void *ctx, uint64_t done, uint64_t total)
{
	export_out *x = ctx;
	if (x->show)
		cli_progress_set(&x->prog, done, total);
	return !export_stop;
}

typedef struct export_args {
	svc_export_query q;
	const char *format, *output;
} export_args;

/* --since / --until: parse_when() into *out, as the flag comes. */
typedef struct when_dst {
	int64_t now;
	int64_t *out;
} when_dst;

static int take_when(void *dst, const char *name, const char *v)
{
	const when_dst *w = dst;
	return parse_when(name, v, w->now, w->out);
}

static int export_flags(cli *c, int argc, char **argv, export_args *a)
{
	int64_t now = time_now_ms();
	when_dst since = {now, &a->q.since_ms}, until = {now, &a->q.until_ms};
	const cli_flag flags[] = {
	    CLI_STR("--webhook", &a->q.webhook_id), CLI_STR("--type", &a->q.action_type),
	    CLI_STR("--format", &a->format),        CLI_STR("--output", &a->output),
	    CLI_FN("--since", take_when, &since),   CLI_FN("--until", take_when, &until)};
	int rc = CLI_PARSE(c, argc, argv, flags, NULL, NULL);
	if (rc)
		return rc;
	if (!a->format)
		return cli_fail(EXIT_USAGE, "events export: --format jsonl is required (the only "
		                            "format so far)");
	if (!str_eq(a->format, "jsonl"))
		return cli_fail(EXIT_USAGE, "--format: expected jsonl, got '%s'", a->format);
	if (a->output && !*a->output)
		return cli_fail(EXIT_USAGE, "--output: expected a file name");
	if (a->q.since_ms && a->q.until_ms && a->q.since_ms >= a->q.until_ms)
		return cli_fail(EXIT_USAGE, "--since must be before --until");
	return 0;
}

/* Open "<output>.XXXXXX" next to @output (same file system, so the rename is
 * atomic). *@tmp: its name, to free. */
static int open_temp(const char *output, char **tmp, FILE **f)
{
	size_t n = strlen(output) + 8;
	*tmp = malloc(n);
	if (!*tmp)
		return cli_fail(EXIT_FAIL, "out of memory");
	str_printf(*tmp, n, "%s.XXXXXX", output);
	int fd = mkostemp(*tmp, O_CLOEXEC);
	if (fd < 0) {
		int e = errno;
		free(*tmp);
		*tmp = NULL;
		return cli_fail(EXIT_FAIL, "cannot create a file next to %s: %s", output,
		                strerror(e));
	}
	/* mkostemp makes it 0600; an export is not more secret than the database,
	 * but the user's umask decides, as for any file they create */
	mode_t um = umask(0);
	umask(um);
	if (fchmod(fd, 0666 & ~um) != 0 || !(*f = fdopen(fd, "w"))) {
		int e = errno;
		close(fd);
		unlink(*tmp);
		free(*tmp);
		*tmp = NULL;
		return cli_fail(EXIT_FAIL, "cannot write %s: %s", output, strerror(e));
	}
	return 0;
}

/* Flush, sync and close the temp file, then give it its name. */
static int finish_temp(FILE *f, const char *tmp, const char *output, th_error *err)
{
	int ret = 0;
	if (fflush(f) != 0 || fsync(fileno(f)) != 0)
		ret = th_err(err, TH_EIO, "writing %s: %s", output, strerror(errno));
	if (fclose(f) != 0 && !ret)
		ret = th_err(err, TH_EIO, "writing %s: %s", output, strerror(errno));
	if (!ret && rename(tmp, output) != 0)
		ret =
		    th_err(err, TH_EIO, "cannot rename %s to %s: %s", tmp, output, strerror(errno));
	return ret;
}

int cmd_events_export(cli *c, int argc, char **argv)
{
	export_args a = {{0}, NULL, NULL};
	svc_ctx *sc;
	/* a file size limit fails the write (EFBIG) like a full disk, instead of
	 * killing the process with the temp file left behind */
	signal(SIGXFSZ, SIG_IGN);
	int rc = export_flags(c, argc, argv, &a);
	if (rc || (rc = cli_svc(c, &sc)))
		return rc;
	export_out x = {stdout, "standard output", {0}, false, NULL, 0};
	char *tmp = NULL;
	if (a.output) {
		if ((rc = open_temp(a.output, &tmp, &x.f)) != 0)
			return rc;
		x.name = a.output;
	}
	signal(SIGINT, on_export_signal);
	signal(SIGTERM, on_export_signal);
	/* the progress line only when it cannot mix with the lines written */
	x.show = a.output || !isatty(STDOUT_FILENO);
	cli_progress_init(&x.prog, stderr, "export: events");
	th_error err = {0, {0}};
	int64_t n = 0;
	int ret = svc_events_export(sc, &a.q, export_event, export_progress, &x, &n, &err);
	cli_progress_end(&x.prog);
	free(x.line);
	if (a.output) {
		if (ret)
			fclose(x.f);
		else
			ret = finish_temp(x.f, tmp, a.output, &err);
		if (ret)
			unlink(tmp); /* nothing half-written stays, under either name */
		free(tmp);
	} else if (!ret && fflush(stdout) != 0) {
		ret = th_err(&err, TH_EIO, "writing to standard output: %s", strerror(errno));
	}
	if (ret)
		return cli_fail(ret == TH_ECONFIG || ret == TH_EINVAL ? EXIT_USAGE : EXIT_FAIL,
		                "events export: %s%s", err.msg,
		                a.output ? " (nothing written)" : "");
	if (a.output)
		fprintf(stderr, "exported %lld event(s) to %s\n", (long long)n, a.output);
	return EXIT_OK;
}

/* ---- prune ----------------------------------------------------------------------------- */

static bool prune_progress(void *ctx, uint64_t done, uint64_t total)
{
	cli_progress_set(ctx, done, total);
	return true;
}

int cmd_events_prune(cli *c, int argc, char **argv)
{
	const char *age = NULL;
	bool dry = false;
	const cli_flag flags[] = {CLI_STR("--older-than", &age), CLI_BOOL("--dry-run", &dry)};
	int rc = CLI_PARSE(c, argc, argv, flags, NULL, NULL);
	if (rc)
		return rc;
	int64_t ms;
	if (!age)
		return cli_fail(EXIT_USAGE, "events prune: --older-than DURATION is required "
		                            "(such as 90d: events received more than 90 days ago)");
	if (num_parse_duration_ms(age, &ms) || ms > MAX_AGE_MS)
		return cli_fail(EXIT_USAGE,
		                "--older-than: expected a duration such as 90d, 12h or 30m (at "
		                "most 36500d), got '%s'",
		                age);
	svc_ctx *sc;
	if ((rc = cli_svc(c, &sc)) != 0)
		return rc;
	cli_progress prog;
	cli_progress_init(&prog, stderr, dry ? "prune (dry run): events" : "prune: events");
	svc_prune_result r;
	th_error err = {0, {0}};
	int ret = svc_events_prune(sc, ms, dry, prune_progress, &prog, &r, &err);
	cli_progress_end(&prog);
	if (ret) {
		cli_fail_err(&err);
		if (r.events)
			fprintf(stderr, "trellohook: %lld event(s) were pruned before the error\n",
			        (long long)r.events);
		return ret == TH_EINVAL ? EXIT_USAGE : EXIT_FAIL;
	}
	char cutoff[32];
	time_format_iso(r.cutoff_ms, cutoff);
	if (c->json)
		return cli_print_json(json_pack(
		    "{s:b,s:s,s:I,s:I,s:I,s:I}", "dry_run", dry, "cutoff", cutoff, "events",
		    (json_int_t)r.events, "deliveries", (json_int_t)r.deliveries, "kept",
		    (json_int_t)r.kept, "pages_freed", (json_int_t)r.pages_freed));
	printf("%s %lld event(s) received before %s, with %lld delivery(ies)",
	       dry ? "would prune" : "pruned", (long long)r.events, cutoff,
	       (long long)r.deliveries);
	if (r.kept)
		printf("; kept %lld with a delivery not yet done or dead", (long long)r.kept);
	if (r.pages_freed)
		printf("; %lld page(s) given back to the file system", (long long)r.pages_freed);
	printf("\n");
	return EXIT_OK;
}
