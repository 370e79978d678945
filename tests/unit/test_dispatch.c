/* SPDX-License-Identifier: MIT */
/* dispatch: the retry schedule with jitter, the exec runner (real /bin/sh
 * processes: stdin bytes, environment, exit codes, output bounds, timeouts
 * killing the process group, commands that never read), the command
 * splitter (hostile input, and a differential test against /bin/sh), exec
 * without a shell (same environment, fallbacks), the handler
 * argument checks, and forward against a receiver that is not there. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "dispatch/dispatch.h"
#include "service/handlers.h"

#include "child.h"

static event sample_event(const char *payload)
{
	event ev = {0};
	ev.id = "EvEvEvEvEvEvEvEvEvEv";
	ev.webhook_id = "WhWhWhWhWhWhWhWhWhWh";
	ev.action_id = "6123456789abcdef00010002";
	ev.action_type = "updateCard";
	ev.model_id = "6123456789abcdef01234567";
	ev.board_id = "6123456789abcdef01234567";
	ev.card_id = "6123456789abcdef0000cc07";
	ev.summary = "Zoë moved \"it\" from A to B";
	ev.payload = (char *)payload;
	ev.payload_len = strlen(payload);
	return ev;
}

static void test_retry_delay(void **state)
{
	th_config cfg;
	memset(&cfg, 0, sizeof cfg);
	cfg.retry_ms[0] = 10000;
	cfg.retry_ms[1] = 60000;
	cfg.nretry = 2;
	for (int i = 0; i < 200; i++) {
		int64_t d1 = dispatch_retry_delay(&cfg, 1);
		int64_t d2 = dispatch_retry_delay(&cfg, 2);
		assert_true(d1 >= 9000 && d1 <= 11000);
		assert_true(d2 >= 54000 && d2 <= 66000);
	}
	assert_int_equal(dispatch_retry_delay(&cfg, 3), -1); /* the last attempt: dead */
	assert_int_equal(dispatch_retry_delay(&cfg, 0), -1);
	/* jitter actually varies */
	int64_t a = dispatch_retry_delay(&cfg, 2), b = a;
	for (int i = 0; i < 20 && b == a; i++)
		b = dispatch_retry_delay(&cfg, 2);
	assert_true(a != b);
}

static void test_exec_stdin_env_and_exit(void **state)
{
	const char *body = "{\"action\":{\"id\":\"x\",\"type\":\"t\"}, \"ü\": \"\\u0000\"}";
	event ev = sample_event(body);
	dispatch_result r;
	setenv("TRELLO_API_SECRET", "must-not-leak-0123", 1);
	setenv("DATABASE_URL", "sqlite:/secret/path.db", 1);
	assert_int_equal(dispatch_exec("cat; echo; echo \"$TRELLO_EVENT_ID|$TRELLO_ACTION_TYPE|"
	                               "$TRELLO_CARD_ID|${TRELLO_LIST_ID-unset}|$TRELLO_SUMMARY|"
	                               "${TRELLO_API_SECRET-none}|${DATABASE_URL-none}\"",
	                               &ev, 5000, &r),
	                 0);
	assert_true(r.ok);
	assert_non_null(r.text);
	char want[512];
	snprintf(
	    want, sizeof want,
	    "%s\nEvEvEvEvEvEvEvEvEvEv|updateCard|6123456789abcdef0000cc07|unset|%s|none|none\n",
	    body, ev.summary);
	assert_string_equal(r.text, want);
	dispatch_result_clear(&r);

	assert_int_equal(dispatch_exec("exit 7", &ev, 5000, &r), 0);
	assert_false(r.ok);
	assert_string_equal(r.text, "exit status 7");
	dispatch_result_clear(&r);

	assert_int_equal(dispatch_exec("kill -9 $$", &ev, 5000, &r), 0);
	assert_false(r.ok);
	assert_non_null(strstr(r.text, "killed by signal 9"));
	dispatch_result_clear(&r);
	unsetenv("TRELLO_API_SECRET");
	unsetenv("DATABASE_URL");
}

static void test_exec_big_unread_input_and_flood(void **state)
{
	size_t n = 4 << 20;
	char *big = malloc(n + 1);
	assert_non_null(big);
	memset(big, 'a', n);
	big[n] = '\0';
	event ev = sample_event(big);
	dispatch_result r;
	/* never reads 4 MiB of stdin: EPIPE, not a hang or SIGPIPE */
	assert_int_equal(dispatch_exec("exit 0", &ev, 5000, &r), 0);
	assert_true(r.ok);
	dispatch_result_clear(&r);
	/* reads it all */
	assert_int_equal(dispatch_exec("wc -c", &ev, 5000, &r), 0);
	assert_true(r.ok);
	assert_non_null(r.text);
	assert_int_equal(strtol(r.text, NULL, 10), (long)n);
	dispatch_result_clear(&r);
	/* floods output with NULs and invalid UTF-8: bounded and cleaned */
	assert_int_equal(dispatch_exec("head -c 1000000 /dev/urandom", &ev, 5000, &r), 0);
	assert_true(r.ok);
	assert_non_null(r.text);
	assert_true(strlen(r.text) < DISPATCH_OUTPUT_MAX + 100);
	assert_true(str_utf8_valid(r.text, strlen(r.text)));
	assert_non_null(strstr(r.text, "more bytes dropped"));
	dispatch_result_clear(&r);
	free(big);
}

static void test_exec_timeout_kills_group(void **state)
{
	event ev = sample_event("{}");
	dispatch_result r;
	char pidfile[] = "/tmp/th-dispatch-pidXXXXXX";
	int fd = mkstemp(pidfile);
	assert_true(fd >= 0);
	close(fd);
	char cmd[256];
	snprintf(cmd, sizeof cmd, "sleep 30 & echo $! > %s; trap '' TERM; sleep 30", pidfile);
	int64_t t0 = time_mono_ms();
	assert_int_equal(dispatch_exec(cmd, &ev, 300, &r), 0);
	int64_t took = time_mono_ms() - t0;
	assert_false(r.ok);
	assert_non_null(strstr(r.text, "timed out after 300 ms"));
	/* TERM ignored by the shell: the SIGKILL after the grace ends it */
	assert_true(took >= 300 && took < 3000);
	dispatch_result_clear(&r);
	FILE *f = fopen(pidfile, "r");
	assert_non_null(f);
	long pid = 0;
	assert_int_equal(fscanf(f, "%ld", &pid), 1);
	fclose(f);
	unlink(pidfile);
	/* the background sleep is gone (or a zombie about to be reaped by init) */
	bool dead = false;
	for (int i = 0; i < 100 && !dead; i++) {
		char path[64], stat[512] = "";
		snprintf(path, sizeof path, "/proc/%ld/stat", pid);
		FILE *s = fopen(path, "r");
		if (!s) {
			dead = true;
			break;
		}
		if (fgets(stat, sizeof stat, s) && strstr(stat, ") Z "))
			dead = true;
		fclose(s);
		if (!dead)
			usleep(20000);
	}
	assert_true(dead);
}

static void test_exec_background_child_does_not_hold_us(void **state)
{
	event ev = sample_event("{}");
	dispatch_result r;
	int64_t t0 = time_mono_ms();
	/* the shell exits at once; its child keeps the output pipe open */
	assert_int_equal(dispatch_exec("(sleep 2; echo late) & echo early", &ev, 5000, &r), 0);
	assert_true(time_mono_ms() - t0 < 1500);
	assert_true(r.ok);
	assert_string_equal(r.text, "early\n");
	dispatch_result_clear(&r);
}

/* ---- the splitter: which commands run without a shell, and their words ---- */

/* Split @cmd; assert it runs directly with exactly the @n words of @want. */
static void expect_words(const char *cmd, size_t n, const char *const *want)
{
	dispatch_argv a;
	const char *why = NULL;
	assert_int_equal(dispatch_split(cmd, &a, &why), 1);
	assert_string_equal(why, "plain words");
	assert_int_equal(a.argc, n);
	for (size_t i = 0; i < n; i++)
		assert_string_equal(a.argv[i], want[i]);
	assert_null(a.argv[n]);
	dispatch_argv_free(&a);
	assert_null(a.argv);
}

/* Split @cmd; assert it goes to the shell, for @reason. */
static void expect_shell(const char *cmd, const char *reason)
{
	dispatch_argv a;
	const char *why = NULL;
	assert_int_equal(dispatch_split(cmd, &a, &why), 0);
	assert_null(a.argv);
	assert_int_equal(a.argc, 0);
	if (strcmp(why, reason) != 0)
		fail_msg("%s: expected \"%s\", got \"%s\"", cmd, reason, why);
	dispatch_argv_free(&a); /* harmless on a zeroed one */
}

static void test_split_words_and_quotes(void **state)
{
	expect_words("cat", 1, (const char *[]){"cat"});
	expect_words(" \t jq  -r\t.action.data.card.name  ", 3,
	             (const char *[]){"jq", "-r", ".action.data.card.name"});
	expect_words("notify 'a b' \"c \\\"d\\\" \\\\e \\x\" f\\ g '' \"\"", 6,
	             (const char *[]){"notify", "a b", "c \"d\" \\e \\x", "f g", "", ""});
	expect_words("a'b'\"c\"d\\e", 1, (const char *[]){"abcde"});
	expect_words("prog 'it''s' \"'\" '\"' \\'", 5,
	             (const char *[]){"prog", "its", "'", "\"", "'"});
	expect_words("prog '\\' '\\\\n'", 3, (const char *[]){"prog", "\\", "\\\\n"});
	/* = after the first word, a slash in the program, a builtin's name as an argument */
	expect_words("/bin/echo a=b exit", 3, (const char *[]){"/bin/echo", "a=b", "exit"});
	expect_words("./exit 3", 2, (const char *[]){"./exit", "3"});
	expect_words("prog ! - -- %", 5, (const char *[]){"prog", "!", "-", "--", "%"});
	/* control characters other than space, tab and newline are word bytes, as in sh */
	expect_words("prog \x01\x7f\r\v\f x\x1b", 3,
	             (const char *[]){"prog", "\x01\x7f\r\v\f", "x\x1b"});
	/* non-UTF-8 and non-ASCII bytes pass through untouched */
	expect_words("prog \xff\xfe '\xc3' Z\xc3\xb6\xe2\x82", 4,
	             (const char *[]){"prog", "\xff\xfe", "\xc3", "Z\xc3\xb6\xe2\x82"});
}

static void test_split_sends_shell_syntax_to_the_shell(void **state)
{
	/* every shell byte, bare, quoted or escaped */
	const char *bytes = "$`|&;<>(){}*?[]~#\n";
	for (const char *b = bytes; *b; b++) {
		char cmd[64];
		snprintf(cmd, sizeof cmd, "prog a%cb", *b);
		if (*b != '<' && *b != '>') /* `a<b` is a word and a redirection */
			expect_shell(cmd, "shell syntax");
		snprintf(cmd, sizeof cmd, "prog '%c'", *b);
		expect_shell(cmd, "shell syntax");
		snprintf(cmd, sizeof cmd, "prog \"x%c\"", *b);
		expect_shell(cmd, "shell syntax");
		snprintf(cmd, sizeof cmd, "prog \\%c", *b);
		expect_shell(cmd, "shell syntax");
	}
	expect_shell("echo $TRELLO_EVENT_ID", "shell syntax");
	expect_shell("FOO=1 prog", "leading assignment");
	expect_shell("LC_ALL=C sort", "leading assignment");
	expect_shell("'FOO=1' prog", "leading assignment"); /* erring towards the shell */
	const char *words[] = {"exit 3",   "! prog",      "echo hi",   "true",
	                       "if",       "cd /",        "exec prog", "'exit' 3",
	                       "kill 1",   "printf %s x", ". ./env",   ": nothing",
	                       "[ -f x ]", "test -f x",   "time prog", "wait"};
	for (size_t i = 0; i < TH_ARRAY_LEN(words); i++)
		expect_shell(words[i],
		             words[i][0] == '[' ? "shell syntax" : "reserved word or builtin");
	expect_shell("prog 'abc", "unbalanced quote");
	expect_shell("prog \"abc", "unbalanced quote");
	expect_shell("prog \"a\\\"", "unbalanced quote");
	expect_shell("prog 'a'\"", "unbalanced quote");
	expect_shell("'", "unbalanced quote");
	expect_shell("prog \\", "trailing backslash");
	expect_shell("", "no words");
	expect_shell(" \t  ", "no words");
}

/* Split @cmd; assert it runs directly with the words @want (NULL-terminated)
 * and the redirections @spec, one "FD OP PATH-OR-FROM" per entry ("1 > x",
 * "2 >& 1", "0 < in", "1 >> log"). */
static void expect_redirs(const char *cmd, const char *const *want, const char *const *spec)
{
	dispatch_argv a;
	const char *why = NULL;
	if (dispatch_split(cmd, &a, &why) != 1)
		fail_msg("%s: went to the shell (%s)", cmd, why);
	assert_string_equal(why, "words and redirections");
	size_t n = 0;
	for (; want[n]; n++)
		assert_string_equal(a.argv[n], want[n]);
	assert_int_equal(a.argc, n);
	assert_null(a.argv[n]);
	size_t nr = 0;
	for (; spec[nr]; nr++) {
		assert_true(nr < a.nredir);
		const dispatch_redir *r = &a.redir[nr];
		static const char *const ops[] = {"<", ">", ">>", ">&"};
		char got[256];
		if (r->op == DISPATCH_REDIR_DUP)
			snprintf(got, sizeof got, "%d >& %d", r->fd, r->from);
		else
			snprintf(got, sizeof got, "%d %s %s", r->fd, ops[r->op], r->path);
		if (strcmp(got, spec[nr]) != 0)
			fail_msg("%s: redirection %zu is \"%s\", expected \"%s\"", cmd, nr, got,
			         spec[nr]);
	}
	assert_int_equal(a.nredir, nr);
	dispatch_argv_free(&a);
}

static void test_split_redirections(void **state)
{
	const char *const cat[] = {"cat", NULL};
	expect_redirs("cat >/dev/null", cat, (const char *[]){"1 > /dev/null", NULL});
	expect_redirs("cat > /dev/null", cat, (const char *[]){"1 > /dev/null", NULL});
	expect_redirs("cat>/dev/null", cat, (const char *[]){"1 > /dev/null", NULL});
	expect_redirs("cat\t>\t/dev/null ", cat, (const char *[]){"1 > /dev/null", NULL});
	expect_redirs("cat >>log", cat, (const char *[]){"1 >> log", NULL});
	expect_redirs("cat >> log", cat, (const char *[]){"1 >> log", NULL});
	expect_redirs("cat <in", cat, (const char *[]){"0 < in", NULL});
	expect_redirs("cat < in", cat, (const char *[]){"0 < in", NULL});
	expect_redirs("cat 2>err", cat, (const char *[]){"2 > err", NULL});
	expect_redirs("cat 2> err", cat, (const char *[]){"2 > err", NULL});
	expect_redirs("cat 2>>err", cat, (const char *[]){"2 >> err", NULL});
	expect_redirs("cat 1>out 0<in 2<x", cat,
	              (const char *[]){"1 > out", "0 < in", "2 < x", NULL});
	expect_redirs("cat 2>&1", cat, (const char *[]){"2 >& 1", NULL});
	expect_redirs("cat >&2", cat, (const char *[]){"1 >& 2", NULL});
	expect_redirs("cat 1>&2 2>&0", cat, (const char *[]){"1 >& 2", "2 >& 0", NULL});
	/* order is kept: these two differ in sh, and so here */
	expect_redirs("cat >f 2>&1", cat, (const char *[]){"1 > f", "2 >& 1", NULL});
	expect_redirs("cat 2>&1 >f", cat, (const char *[]){"2 >& 1", "1 > f", NULL});
	/* redirections anywhere among the words; the program is the first word */
	expect_redirs(">out <in jq -r '.a b' 2>/dev/null x",
	              (const char *[]){"jq", "-r", ".a b", "x", NULL},
	              (const char *[]){"1 > out", "0 < in", "2 > /dev/null", NULL});
	/* a word ends at < or >; only a lone digit first in its token is a descriptor */
	expect_redirs("prog a2>x", (const char *[]){"prog", "a2", NULL},
	              (const char *[]){"1 > x", NULL});
	expect_redirs("prog 2 >x", (const char *[]){"prog", "2", NULL},
	              (const char *[]){"1 > x", NULL});
	expect_redirs("prog '2'>x", (const char *[]){"prog", "2", NULL},
	              (const char *[]){"1 > x", NULL});
	expect_redirs("prog x=1 >a=b", (const char *[]){"prog", "x=1", NULL},
	              (const char *[]){"1 > a=b", NULL});
	/* targets keep their bytes, slashes and dots */
	expect_redirs("cat >./dir/m\xc3\xb6ve.txt", cat,
	              (const char *[]){"1 > ./dir/m\xc3\xb6ve.txt", NULL});

	/* what stays with the shell */
	const char *const shell[] = {
	    "cat >'quoted'", "cat >\"q\"", "cat >a\\ b", "cat >",     "cat 2>",     "cat > ",
	    "cat >>",        "cat <<EOF",  "cat <>f",    "cat <&0",   "cat >&-",    "cat >&f",
	    "cat >&3",       "cat 2>&1x",  "cat 2>&10",  "cat 3>f",   "cat 9<f",    "cat 12>f",
	    "cat >a>b",      "cat >a<b",   "cat > >a",   "cat >>>a",  "cat >>&a",   "cat &>f",
	    "cat >f &",      "cat a&b",    "cat \\>f",   "cat '>'f",  "cat \">f\"", "cat '&'",
	    "cat >f&",       "cat >&1&",   "cat >>f'x'", "cat <'in'", "cat \\&",
	};
	for (size_t i = 0; i < TH_ARRAY_LEN(shell); i++) {
		dispatch_argv a;
		const char *why = NULL;
		if (dispatch_split(shell[i], &a, &why) != 0)
			fail_msg("<%s> was split; it needs the shell", shell[i]);
		assert_null(a.argv);
	}
	expect_shell("cat 3>f", "redirection the splitter does not handle");
	expect_shell("cat >'quoted'", "redirection the splitter does not handle");
	expect_shell("cat >f &", "shell syntax");
	expect_shell("cat \\>f", "shell syntax");
	expect_shell(">/dev/null", "no words");
	expect_shell("2>&1", "no words");
	expect_shell(">x FOO=1 prog", "leading assignment");
	expect_shell(">x echo hi", "reserved word or builtin");
	expect_shell("cat >$HOME/x", "shell syntax");
	expect_shell("cat >*.txt", "shell syntax");
	expect_shell("cat >~/x", "shell syntax");
	expect_shell("cat >x | wc", "shell syntax");
	/* 16 redirections are split, 17 go to the shell */
	char many[256];
	size_t o = (size_t)snprintf(many, sizeof many, "cat");
	for (int i = 0; i < 16; i++)
		o += (size_t)snprintf(many + o, sizeof many - o, " 2>&1");
	dispatch_argv a;
	assert_int_equal(dispatch_split(many, &a, NULL), 1);
	assert_int_equal(a.nredir, 16);
	dispatch_argv_free(&a);
	snprintf(many + o, sizeof many - o, " 2>&1");
	expect_shell(many, "too many redirections");
}

static void test_split_limits(void **state)
{
	/* one 60,000-byte word: fine */
	size_t n = 60000;
	char *big = malloc(70001);
	assert_non_null(big);
	memset(big, 'a', n);
	big[n] = '\0';
	dispatch_argv a;
	assert_int_equal(dispatch_split(big, &a, NULL), 1);
	assert_int_equal(a.argc, 1);
	assert_int_equal(strlen(a.argv[0]), n);
	dispatch_argv_free(&a);
	/* over 64 KiB: the shell's business */
	memset(big, 'a', 70000);
	big[70000] = '\0';
	expect_shell(big, "too long to split");
	/* 4096 words fit, 4097 do not */
	for (size_t i = 0; i < 4097; i++) {
		big[2 * i] = 'w';
		big[2 * i + 1] = ' ';
	}
	big[2 * 4096 - 1] = '\0';
	assert_int_equal(dispatch_split(big, &a, NULL), 1);
	assert_int_equal(a.argc, 4096);
	dispatch_argv_free(&a);
	big[2 * 4096 - 1] = ' ';
	big[2 * 4097 - 1] = '\0';
	expect_shell(big, "too many words");
	/* the densest word count: empty quoted words */
	for (size_t i = 0; i < 3000; i++)
		memcpy(big + 3 * i, "'' ", 3);
	big[3 * 3000 - 1] = '\0';
	assert_int_equal(dispatch_split(big, &a, NULL), 1);
	assert_int_equal(a.argc, 3000);
	assert_string_equal(a.argv[2999], "");
	dispatch_argv_free(&a);
	free(big);
}

/* Run @script with /bin/sh -c; return its exit status, output in @out. */
static int run_sh(const char *script, buf *out)
{
	int p[2];
	assert_int_equal(pipe(p), 0);
	pid_t parent = getpid();
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		child_dies_with_parent(parent);
		dup2(p[1], 1);
		int null = open("/dev/null", O_WRONLY);
		if (null >= 0)
			dup2(null, 2); /* its syntax errors are expected */
		close(p[0]);
		close(p[1]);
		execl("/bin/sh", "sh", "-c", script, (char *)NULL);
		_exit(127);
	}
	close(p[1]);
	char chunk[4096];
	ssize_t r;
	while ((r = read(p[0], chunk, sizeof chunk)) > 0)
		assert_int_equal(buf_append(out, chunk, (size_t)r), 0);
	close(p[0]);
	int st = 0;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

/* Differential: random commands of words, blanks, quotes, backslashes, control
 * characters and non-UTF-8 bytes, split by us and by the real /bin/sh (its
 * printf builtin prints each word it got, NUL-terminated). Unbalanced quotes
 * must be what the shell also refuses. */
static void test_split_agrees_with_sh(void **state)
{
	static const char alphabet[] = {'a',    'b',    ' ',    ' ',    '\t',   '\'', '\'',
	                                '"',    '"',    '\\',   '\\',   '\x01', '\r', '\x7f',
	                                '\x81', '\x88', '\xc3', '\xff', '=',    '-',  '/',
	                                '!',    '%',    ',',    '.',    '@',    '^',  '+'};
	unsigned seed = 20261201;
	int direct = 0, refused = 0;
	for (int iter = 0; iter < 400; iter++) {
		char tail[40];
		size_t len = 1 + (size_t)(rand_r(&seed) % 24);
		for (size_t i = 0; i < len; i++)
			tail[i] = alphabet[rand_r(&seed) % sizeof alphabet];
		tail[len] = '\0';
		char cmd[64], script[80];
		snprintf(cmd, sizeof cmd, "prog %s", tail);
		snprintf(script, sizeof script, "printf '%%s\\0' prog %s", tail);
		dispatch_argv a;
		const char *why = NULL;
		int rc = dispatch_split(cmd, &a, &why);
		assert_true(rc == 0 || rc == 1);
		buf got;
		buf_init(&got, 1 << 16);
		int st = run_sh(script, &got);
		if (rc == 1) {
			direct++;
			buf want;
			buf_init(&want, 1 << 16);
			for (size_t i = 0; i < a.argc; i++)
				assert_int_equal(
				    buf_append(&want, a.argv[i], strlen(a.argv[i]) + 1), 0);
			if (st != 0 || got.len != want.len || memcmp(got.data, want.data, got.len))
				fail_msg("split and sh disagree on <%s> (sh status %d)", tail, st);
			buf_free(&want);
			dispatch_argv_free(&a);
		} else if (strcmp(why, "unbalanced quote") == 0) {
			refused++;
			if (st == 0)
				fail_msg("sh accepted <%s>, which we called unbalanced", tail);
		}
		buf_free(&got);
	}
	/* the sample exercised both sides */
	assert_true(direct > 50);
	assert_true(refused > 50);
}

/* ---- exec without a shell ---- */

static void test_exec_direct_runs_words(void **state)
{
	event ev = sample_event("{\"x\": \"\xc3\xbc\"}");
	dispatch_result r;
	assert_int_equal(dispatch_exec("/usr/bin/printf %s/ 'a b' \"c\\\"d\" e\\ f", &ev, 5000, &r),
	                 0);
	assert_false(r.shell);
	assert_true(r.ok);
	assert_string_equal(r.text, "a b/c\"d/e f/");
	dispatch_result_clear(&r);
	/* stdin: the exact payload bytes */
	assert_int_equal(dispatch_exec("cat", &ev, 5000, &r), 0);
	assert_false(r.shell);
	assert_true(r.ok);
	assert_string_equal(r.text, ev.payload);
	dispatch_result_clear(&r);
	/* exit status of a program run directly */
	assert_int_equal(dispatch_exec("/bin/false", &ev, 5000, &r), 0);
	assert_false(r.shell);
	assert_false(r.ok);
	assert_string_equal(r.text, "exit status 1");
	dispatch_result_clear(&r);
	/* the shell's commands still go to the shell */
	assert_int_equal(dispatch_exec("cat | cat >/dev/null", &ev, 5000, &r), 0);
	assert_true(r.shell);
	assert_true(r.ok);
	assert_null(r.text);
	dispatch_result_clear(&r);
}

/* Run @cmd; assert the shell ran it and it failed with @status, its output saying @says. */
static void expect_shell_fails(const char *cmd, const char *status, const char *says)
{
	event ev = sample_event("{}");
	dispatch_result r;
	assert_int_equal(dispatch_exec(cmd, &ev, 5000, &r), 0);
	assert_true(r.shell);
	assert_false(r.ok);
	assert_non_null(strstr(r.text, status));
	assert_non_null(strstr(r.text, says));
	dispatch_result_clear(&r);
}

static void test_exec_direct_falls_back_to_sh(void **state)
{
	event ev = sample_event("{}");
	dispatch_result r;
	/* not found: the shell says so, exactly as before */
	expect_shell_fails("no-such-program-th-4711 x", "exit status 127",
	                   "no-such-program-th-4711: not found");
	/* a script without #! is run by the shell (ENOEXEC) */
	char path[] = "/tmp/th-dispatch-scriptXXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	const char *text = "echo \"from script: $1\"\n";
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	assert_int_equal(fchmod(fd, 0700), 0);
	close(fd);
	char cmd[128];
	snprintf(cmd, sizeof cmd, "%s 'one arg'", path);
	assert_int_equal(dispatch_exec(cmd, &ev, 5000, &r), 0);
	assert_true(r.shell);
	assert_true(r.ok);
	assert_string_equal(r.text, "from script: one arg\n");
	dispatch_result_clear(&r);
	unlink(path);
	/* without PATH the shell's own default search applies: leave it to the shell */
	char *saved = str_dup(getenv("PATH"));
	assert_non_null(saved);
	unsetenv("PATH");
	assert_int_equal(dispatch_exec("cat", &ev, 5000, &r), 0);
	setenv("PATH", saved, 1);
	free(saved);
	assert_true(r.shell);
	assert_true(r.ok);
	dispatch_result_clear(&r);
}

/* ---- redirections without a shell: the same files and results as sh ---- */

/* A fresh directory holding "in" and an "out" longer than any output below. */
static void redir_dir(char *dir)
{
	assert_non_null(mkdtemp(dir));
	const char *const files[][2] = {{"in", "from the file\n"},
	                                {"out", "old content, longer than the payload\n"}};
	for (size_t i = 0; i < TH_ARRAY_LEN(files); i++) {
		char path[256];
		snprintf(path, sizeof path, "%s/%s", dir, files[i][0]);
		FILE *f = fopen(path, "w");
		assert_non_null(f);
		assert_int_equal(fputs(files[i][1], f) >= 0, 1);
		assert_int_equal(fclose(f), 0);
	}
}

/* "NAME MODE CONTENT;" for every file of @dir that a command may touch; removes them and @dir. */
static void redir_files(const char *dir, buf *out)
{
	const char *const names[] = {"in", "out", "err", "new", "sub"};
	for (size_t i = 0; i < TH_ARRAY_LEN(names); i++) {
		char path[256];
		snprintf(path, sizeof path, "%s/%s", dir, names[i]);
		struct stat st;
		if (stat(path, &st) != 0)
			continue;
		assert_int_equal(buf_printf(out, "%s %o ", names[i], (unsigned)st.st_mode), 0);
		FILE *f = fopen(path, "r");
		assert_non_null(f);
		char chunk[512];
		size_t n;
		while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
			assert_int_equal(buf_append(out, chunk, n), 0);
		fclose(f);
		assert_int_equal(buf_puts(out, ";"), 0);
		assert_int_equal(S_ISDIR(st.st_mode) ? rmdir(path) : unlink(path), 0);
	}
	assert_int_equal(rmdir(dir), 0);
}

/* Run @cmd in a fresh directory, directly (unless @direct is false) and as
 * `{ CMD; }` (the shell), and assert both give the same result and files. */
static void expect_like_sh(const char *cmd, bool direct)
{
	event ev = sample_event("the payload\n");
	char cwd[4096];
	assert_non_null(getcwd(cwd, sizeof cwd));
	dispatch_result r[2];
	buf files[2];
	for (int i = 0; i < 2; i++) {
		char dir[] = "/tmp/th-redirXXXXXX", shcmd[512];
		redir_dir(dir);
		assert_int_equal(chdir(dir), 0);
		snprintf(shcmd, sizeof shcmd, "{ %s; }", cmd);
		assert_int_equal(dispatch_exec(i ? shcmd : cmd, &ev, 5000, &r[i]), 0);
		assert_int_equal(chdir(cwd), 0);
		buf_init(&files[i], 1 << 16);
		redir_files(dir, &files[i]);
	}
	if (r[0].shell == direct)
		fail_msg("<%s>: %s", cmd, direct ? "went to the shell" : "ran directly");
	assert_true(r[1].shell);
	if (r[0].ok != r[1].ok || !r[0].text != !r[1].text ||
	    (r[0].text && strcmp(r[0].text, r[1].text) != 0))
		fail_msg("<%s>: directly %d \"%s\", sh %d \"%s\"", cmd, r[0].ok, r[0].text, r[1].ok,
		         r[1].text);
	if (files[0].len != files[1].len || memcmp(files[0].data, files[1].data, files[0].len))
		fail_msg("<%s>: directly left <%.*s>, sh <%.*s>", cmd, (int)files[0].len,
		         files[0].data, (int)files[1].len, files[1].data);
	for (int i = 0; i < 2; i++) {
		dispatch_result_clear(&r[i]);
		buf_free(&files[i]);
	}
}

/* Does the spawn report a redirection that failed only in the child? It does
 * when the vfork child shares our memory (its errno is left there); where
 * vfork is a fork (valgrind, ThreadSanitizer) the child only exits 127. */
static bool spawn_reports_file_errors(void)
{
	volatile int seen = 0;
	pid_t pid = vfork();
	if (pid == 0) {
		seen = 1;
		_exit(0);
	}
	assert_true(pid > 0);
	waitpid(pid, NULL, 0);
	return seen == 1;
}

/* Copy the program @from to a new file named by the template @to, executable. */
static void copy_program(const char *from, char *to)
{
	int out = mkstemp(to);
	assert_true(out >= 0);
	int in = open(from, O_RDONLY);
	assert_true(in >= 0);
	char chunk[65536];
	ssize_t n;
	while ((n = read(in, chunk, sizeof chunk)) > 0)
		assert_int_equal(write(out, chunk, (size_t)n), n);
	assert_int_equal(n, 0);
	close(in);
	assert_int_equal(fchmod(out, 0700), 0);
	assert_int_equal(close(out), 0);
}

static void test_exec_redirections_like_sh(void **state)
{
	mode_t old = umask(027); /* the mode of a new file is 0666 less the umask */
	const char *const direct[] = {
	    "cat >out",
	    "cat > new",
	    "cat >>out",
	    "cat>>new",
	    "cat <in",
	    "cat < in >new",
	    "cat >/dev/null",
	    "cat >/dev/stderr",    /* the child's own stderr: the captured output */
	    "cat 2>&1 >/dev/fd/2", /* the same, the other way round */
	    "ls /nonexistent-th-4711 2>err",
	    "ls /nonexistent-th-4711 >out 2>&1",
	    "ls /nonexistent-th-4711 2>&1 >out", /* order matters: the error is output */
	    "ls /nonexistent-th-4711 2>>out",
	    "cat in - 1>out 2>err",
	    "cat >out >new", /* both opened, in order: out truncated, new written */
	    "/bin/false >new",
	    "cat 0<in 1>>out",
	};
	for (size_t i = 0; i < TH_ARRAY_LEN(direct); i++)
		expect_like_sh(direct[i], true);
	/* a redirection that fails: the shell does it again and reports it as it always did */
	const char *const failing[] = {
	    "cat <missing", "cat >sub/x", "cat >new <missing", "cat >out 2>sub/x", "cat >in/x",
	};
	for (size_t i = 0; i < TH_ARRAY_LEN(failing); i++)
		expect_like_sh(failing[i], false);
	umask(old);
	/* a redirection that fails only in the child (the file checks out, the
	 * open does not: writing to a program that runs): the spawn's error
	 * sends it to the shell, where the spawn reports one */
	if (spawn_reports_file_errors()) {
		char busy[] = "/tmp/th-busyXXXXXX", cmd[64];
		copy_program("/bin/sleep", busy);
		pid_t parent = getpid(), pid = fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			child_dies_with_parent(parent);
			execl(busy, "sleep", "30", (char *)NULL);
			_exit(127);
		}
		usleep(200000); /* let it exec */
		snprintf(cmd, sizeof cmd, "cat >%s", busy);
		expect_like_sh(cmd, false);
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		unlink(busy);
	}
	/* and the report says why */
	expect_shell_fails("cat </nonexistent-th-4711", "exit status 2",
	                   "cannot open /nonexistent-th-4711");
}

/* The variables of a command run directly and through the shell, one per line, sorted. */
static void env_lines(const char *cmd, bool want_shell, char ***lines, size_t *n)
{
	event ev = sample_event("{}");
	dispatch_result r;
	assert_int_equal(dispatch_exec(cmd, &ev, 5000, &r), 0);
	assert_true(r.ok);
	assert_true(r.shell == want_shell);
	assert_non_null(r.text);
	*n = 0;
	*lines = calloc(64, sizeof **lines);
	assert_non_null(*lines);
	char *save = NULL;
	for (char *l = strtok_r(r.text, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
		assert_true(*n < 64);
		(*lines)[(*n)++] = str_dup(l);
	}
	for (size_t i = 0; i + 1 < *n; i++) { /* a small insertion sort */
		for (size_t j = i + 1; j < *n; j++) {
			if (strcmp((*lines)[j], (*lines)[i]) < 0) {
				char *t = (*lines)[i];
				(*lines)[i] = (*lines)[j];
				(*lines)[j] = t;
			}
		}
	}
	dispatch_result_clear(&r);
}

static void test_exec_same_environment_both_ways(void **state)
{
	setenv("TRELLO_API_SECRET", "must-not-leak-0123", 1);
	char **direct, **shell;
	size_t nd, ns;
	env_lines("/usr/bin/env", false, &direct, &nd);
	env_lines("/usr/bin/env; :", true, &shell, &ns);
	unsetenv("TRELLO_API_SECRET");
	assert_int_equal(nd, ns);
	bool pwd = false, id = false;
	for (size_t i = 0; i < nd; i++) {
		assert_string_equal(direct[i], shell[i]);
		assert_null(strstr(direct[i], "must-not-leak"));
		pwd |= strncmp(direct[i], "PWD=/", 5) == 0;
		id |= strcmp(direct[i], "TRELLO_EVENT_ID=EvEvEvEvEvEvEvEvEvEv") == 0;
		free(direct[i]);
		free(shell[i]);
	}
	assert_true(pwd && id);
	free(direct);
	free(shell);
}

static void test_exec_direct_timeout_kills_group(void **state)
{
	event ev = sample_event("{}");
	dispatch_result r;
	int64_t t0 = time_mono_ms();
	assert_int_equal(dispatch_exec("sleep 30", &ev, 200, &r), 0);
	assert_false(r.shell);
	assert_false(r.ok);
	assert_non_null(strstr(r.text, "timed out after 200 ms"));
	assert_true(time_mono_ms() - t0 < 3000);
	dispatch_result_clear(&r);
}

static void on_usr1(int sig)
{
	(void)sig;
}

/* The line of /proc/PID/status that starts with @name, e.g. "SigIgn:\t…", from @text. */
static const char *status_line(const char *text, const char *name)
{
	const char *l = strstr(text, name);
	assert_non_null(l);
	return l + strlen(name);
}

/* Whatever the calling thread and process have set — signals ignored (SIGPIPE,
 * as serve does), caught (SIGUSR1) and blocked (SIGUSR2 in this thread), a
 * descriptor without FD_CLOEXEC — the handler starts with default
 * dispositions, an empty mask, only 0-2 open and a process group of its own:
 * run directly and through the shell. */
static void test_exec_child_starts_clean(void **state)
{
	struct sigaction sa = {.sa_handler = on_usr1};
	sigemptyset(&sa.sa_mask);
	assert_int_equal(sigaction(SIGUSR1, &sa, NULL), 0);
	sigset_t usr2, old;
	sigemptyset(&usr2);
	sigaddset(&usr2, SIGUSR2);
	assert_int_equal(pthread_sigmask(SIG_BLOCK, &usr2, &old), 0);
	int leak = open("/dev/null", O_RDONLY); /* no O_CLOEXEC */
	assert_true(leak > 2);
	event ev = sample_event("{}");
	dispatch_result r;
	const char *cmds[] = {"cat /proc/self/status", "cat /proc/self/status; :"};
	for (size_t i = 0; i < 2; i++) {
		assert_int_equal(dispatch_exec(cmds[i], &ev, 5000, &r), 0);
		assert_int_equal(r.shell, i == 1);
		assert_true(r.ok);
		/* cat's own view: nothing ignored, caught or blocked */
		assert_memory_equal(status_line(r.text, "SigIgn:\t"), "0000000000000000", 16);
		assert_memory_equal(status_line(r.text, "SigCgt:\t"), "0000000000000000", 16);
		assert_memory_equal(status_line(r.text, "SigBlk:\t"), "0000000000000000", 16);
		dispatch_result_clear(&r);
	}
	/* ls lists its own directory descriptor (3) beside 0-2; the leak is not there */
	assert_int_equal(dispatch_exec("ls /proc/self/fd", &ev, 5000, &r), 0);
	assert_false(r.shell);
	assert_string_equal(r.text, "0\n1\n2\n3\n");
	dispatch_result_clear(&r);
	/* /proc/self/stat: "pid (comm) state ppid pgrp …": the leader of its own group */
	assert_int_equal(dispatch_exec("cat /proc/self/stat", &ev, 5000, &r), 0);
	assert_false(r.shell);
	long pid = 0, pgrp = 0;
	const char *after = strrchr(r.text, ')');
	assert_non_null(after);
	assert_int_equal(sscanf(r.text, "%ld", &pid), 1);
	assert_int_equal(sscanf(after, ") %*c %*d %ld", &pgrp), 1);
	assert_true(pid > 0);
	assert_int_equal(pgrp, pid);
	dispatch_result_clear(&r);
	/* and the caller's own signal state is as it was */
	sigset_t now;
	assert_int_equal(pthread_sigmask(SIG_SETMASK, NULL, &now), 0);
	assert_true(sigismember(&now, SIGUSR2));
	assert_false(sigismember(&now, SIGTERM));
	struct sigaction cur;
	assert_int_equal(sigaction(SIGUSR1, NULL, &cur), 0);
	assert_ptr_equal(cur.sa_handler, on_usr1);
	assert_int_equal(pthread_sigmask(SIG_SETMASK, &old, NULL), 0);
	signal(SIGUSR1, SIG_DFL);
	close(leak);
}

static void test_forward_connection_refused(void **state)
{
	forwarder *f = NULL;
	assert_int_equal(forwarder_new(&f), 0);
	handler h = {0};
	h.kind = HANDLER_FORWARD;
	h.target = "http://127.0.0.1:1/x";
	h.secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
	event ev = sample_event("{}");
	dispatch_result r;
	assert_int_equal(dispatch_forward(f, &h, &ev, 2000, &r), 0);
	assert_false(r.ok);
	assert_false(r.gone);
	assert_non_null(strstr(r.text, "request failed"));
	dispatch_result_clear(&r);
	h.secret = "whsec_!!!";
	assert_int_not_equal(dispatch_forward(f, &h, &ev, 2000, &r), 0);
	assert_false(r.ok);
	dispatch_result_clear(&r);
	forwarder_free(f);
}

static void test_handler_checks(void **state)
{
	const char *good_on[] = {"commentCard", "updateCard:idList", "a,b:c,D",
	                         "createCard,updateCard:closed"};
	const char *bad_on[] = {
	    "", ",", "a,", ",a", "a b", "a:", ":b", "a:b:c", "a-b", "ü", "a;rm -rf", "type:fi eld"};
	for (size_t i = 0; i < TH_ARRAY_LEN(good_on); i++)
		assert_int_equal(handlers_check_on(good_on[i], NULL), 0);
	for (size_t i = 0; i < TH_ARRAY_LEN(bad_on); i++)
		assert_int_equal(handlers_check_on(bad_on[i], NULL), TH_EINVAL);
	const char *good_url[] = {"http://127.0.0.1:8080/x", "https://example.com",
	                          "https://a.b/c?d=e#f"};
	const char *bad_url[] = {"",
	                         "ftp://a/",
	                         "http://",
	                         "https:///x",
	                         "http://a b/",
	                         "http://a/\x01",
	                         "http://\xc3\xa9.com/",
	                         "HTTP//x",
	                         "javascript:alert(1)"};
	for (size_t i = 0; i < TH_ARRAY_LEN(good_url); i++)
		assert_int_equal(handlers_check_url(good_url[i], NULL), 0);
	for (size_t i = 0; i < TH_ARRAY_LEN(bad_url); i++)
		assert_int_equal(handlers_check_url(bad_url[i], NULL), TH_EINVAL);
	char longurl[2100];
	memset(longurl, 'a', sizeof longurl);
	memcpy(longurl, "http://", 7);
	longurl[sizeof longurl - 1] = '\0';
	assert_int_equal(handlers_check_url(longurl, NULL), TH_EINVAL);
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN); /* as serve does */
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_retry_delay),
	    cmocka_unit_test(test_exec_stdin_env_and_exit),
	    cmocka_unit_test(test_exec_big_unread_input_and_flood),
	    cmocka_unit_test(test_exec_timeout_kills_group),
	    cmocka_unit_test(test_exec_background_child_does_not_hold_us),
	    cmocka_unit_test(test_split_words_and_quotes),
	    cmocka_unit_test(test_split_sends_shell_syntax_to_the_shell),
	    cmocka_unit_test(test_split_redirections),
	    cmocka_unit_test(test_split_limits),
	    cmocka_unit_test(test_split_agrees_with_sh),
	    cmocka_unit_test(test_exec_direct_runs_words),
	    cmocka_unit_test(test_exec_direct_falls_back_to_sh),
	    cmocka_unit_test(test_exec_redirections_like_sh),
	    cmocka_unit_test(test_exec_same_environment_both_ways),
	    cmocka_unit_test(test_exec_direct_timeout_kills_group),
	    cmocka_unit_test(test_exec_child_starts_clean),
	    cmocka_unit_test(test_forward_connection_refused),
	    cmocka_unit_test(test_handler_checks),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
