/* SPDX-License-Identifier: MIT */
/*
 * exec_split.c — decide whether an exec handler's command needs a shell, and
 * when it does not, split it into argv words and file redirections exactly
 * as /bin/sh would.
 *
 * The command is text an operator typed (`handler add --exec`), stored and
 * handed to us unchanged. The rule is deliberately narrow: a command runs
 * without a shell only when the shell could not do anything with it but
 * split words, remove quotes and do plain file redirections (exec.c turns
 * those into spawn file actions). Anything else — expansion, other
 * redirections, pipes, lists, globbing, comments, a leading VAR=x assignment, a reserved
 * word or a shell builtin as the program, unbalanced quotes, a trailing
 * backslash — goes to /bin/sh -c, where it behaves (and fails) as it always
 * did. Erring towards the shell is always correct, only slower.
 *
 * What is split here (POSIX "Token Recognition" for the subset left):
 *  - unquoted blanks (space, tab) separate words; every other byte, control
 *    characters and non-UTF-8 bytes included, is part of a word, as in sh;
 *  - '...' keeps everything up to the next ' literally;
 *  - "..." keeps everything, except that \" and \\ become " and \ (the
 *    other characters a backslash escapes there, $ ` and newline, already
 *    sent the command to the shell);
 *  - an unquoted backslash keeps the next byte literally;
 *  - '' and "" make an (empty) word of their own;
 *  - unquoted < and > end a word and start a redirection; a lone digit
 *    0-2 right before one (first in its token) is the descriptor; the
 *    forms kept are <F, >F, >>F (F the next word, without quotes,
 *    backslashes or < > &) and >&D (D 0-2); & anywhere else, any quoted or
 *    escaped < > &, and every other operator (<<, <>, <&, >|, >&-, 3>, 12>)
 *    go to the shell.
 */
#include <stdlib.h>
#include <string.h>

#include "dispatch/dispatch.h"

/* Longer commands, or more words, are left to the shell (which has its own
 * limits); handler add already caps a command at 8,000 bytes. */
#define SPLIT_MAX_LEN 65536
#define SPLIT_MAX_WORDS 4096

/* Bytes that mean shell syntax wherever they appear, even quoted: erring
 * towards the shell keeps the rule short and obviously right. */
static const char shell_bytes[] = "$`|;(){}*?[]~#\n";

/* Words that are not programs: reserved words (POSIX, plus bash's, in case
 * /bin/sh is bash) and builtins of dash and bash. `echo` is here because the
 * shell's and /bin/echo treat backslashes differently; `exit 3` has no
 * program at all. */
static const char *const shell_words[] = {
    "!",         "{",        "}",       "[[",       "]]",       "case",    "coproc",   "do",
    "done",      "elif",     "else",    "esac",     "fi",       "for",     "function", "if",
    "in",        "select",   "then",    "time",     "until",    "while",   ".",        ":",
    "[",         "alias",    "bg",      "bind",     "break",    "builtin", "caller",   "cd",
    "chdir",     "command",  "compgen", "complete", "continue", "declare", "dirs",     "disown",
    "echo",      "enable",   "eval",    "exec",     "exit",     "export",  "false",    "fc",
    "fg",        "getopts",  "hash",    "help",     "history",  "jobs",    "kill",     "let",
    "local",     "logout",   "mapfile", "popd",     "printf",   "pushd",   "pwd",      "read",
    "readarray", "readonly", "return",  "set",      "shift",    "shopt",   "source",   "suspend",
    "test",      "times",    "trap",    "true",     "type",     "typeset", "ulimit",   "umask",
    "unalias",   "unset",    "wait"};

void dispatch_argv_free(dispatch_argv *a)
{
	if (!a)
		return;
	free(a->argv);
	memset(a, 0, sizeof *a);
}

/* Set *why (when wanted) and answer "needs the shell". */
static int to_shell(const char **why, const char *reason)
{
	if (why)
		*why = reason;
	return 0;
}

/* The tokenizer's state: where the words and redirection targets go. */
typedef struct splitter {
	char *mem;       /* unquoted text, one NUL after each word or target */
	size_t o;        /* bytes of mem used */
	char **argv;     /* the words (pointers into mem) */
	size_t argc;     /* words so far */
	size_t argv_max; /* room in argv, the closing NULL included */
	dispatch_redir *redir;
	size_t nredir;
	const char *why; /* set when the command needs the shell */
} splitter;

static bool is_redir_byte(char c)
{
	return c == '<' || c == '>' || c == '&';
}

static bool ends_token(char c)
{
	return c == '\0' || c == ' ' || c == '\t';
}

/* A word at *pp, unquoted into s->mem: up to an unquoted blank, the end, or
 * an unquoted < or > (which starts a redirection: `prog>x` is prog, then
 * >x, as in sh). Any & and any quoted or escaped < > & send the command to
 * the shell. Returns false (s->why set) then. */
static bool split_word(splitter *s, const char **pp)
{
	enum { PLAIN, SINGLE, DOUBLE } q = PLAIN;
	const char *p = *pp;
	if (s->argc + 1 >= s->argv_max) {
		s->why = "too many words";
		return false;
	}
	s->argv[s->argc++] = s->mem + s->o;
	for (; *p; p++) {
		char c = *p;
		if (q != PLAIN && is_redir_byte(c)) {
			s->why = "shell syntax";
			return false;
		}
		if (q == SINGLE) {
			if (c == '\'')
				q = PLAIN;
			else
				s->mem[s->o++] = c;
		} else if (q == DOUBLE) {
			if (c == '"')
				q = PLAIN;
			else if (c == '\\' && (p[1] == '"' || p[1] == '\\'))
				s->mem[s->o++] = *++p;
			else
				s->mem[s->o++] = c;
		} else if (c == ' ' || c == '\t' || c == '<' || c == '>') {
			break;
		} else if (c == '&') {
			s->why = "shell syntax";
			return false;
		} else if (c == '\'') {
			q = SINGLE;
		} else if (c == '"') {
			q = DOUBLE;
		} else if (c == '\\') {
			if (!p[1]) {
				s->why = "trailing backslash";
				return false;
			}
			if (is_redir_byte(p[1])) {
				s->why = "shell syntax";
				return false;
			}
			s->mem[s->o++] = *++p;
		} else {
			s->mem[s->o++] = c;
		}
	}
	if (q != PLAIN) {
		s->why = "unbalanced quote";
		return false;
	}
	/* `12>x` (a descriptor of more than one digit) is the shell's business */
	if (*p == '<' || *p == '>') {
		const char *w = *pp;
		size_t digits = strspn(w, "0123456789");
		if (digits && w + digits == p) {
			s->why = "redirection the splitter does not handle";
			return false;
		}
	}
	s->mem[s->o++] = '\0';
	*pp = p;
	return true;
}

/* The file after a redirection operator: blanks, then plain bytes up to a
 * blank or the end. No quotes, backslashes or further < > & in it (the
 * shell's, erring on its side); none at all is a syntax error the shell
 * reports. Returns the target's text in s->mem, or NULL (s->why set). */
static const char *split_target(splitter *s, const char **pp)
{
	const char *p = *pp + strspn(*pp, " \t");
	size_t n = strcspn(p, " \t");
	if (n == 0 || memchr(p, '\'', n) || memchr(p, '"', n) || memchr(p, '\\', n) ||
	    memchr(p, '<', n) || memchr(p, '>', n) || memchr(p, '&', n)) {
		s->why = "redirection the splitter does not handle";
		return NULL;
	}
	char *t = s->mem + s->o;
	memcpy(t, p, n);
	t[n] = '\0';
	s->o += n + 1;
	*pp = p + n;
	return t;
}

/* A redirection at *pp: an optional descriptor (one digit 0-2, first in its
 * token), then <FILE, >FILE, >>FILE or >&D (D one digit 0-2, then a blank
 * or the end). Everything else that starts with < or > — <<, <>, <&, >|,
 * >&-, >&FILE, descriptors above 2 — goes to the shell. */
static bool split_redir(splitter *s, const char **pp)
{
	const char *p = *pp;
	int fd = -1;
	if (*p >= '0' && *p <= '9') {
		fd = *p - '0';
		p++;
		if (fd > 2) {
			s->why = "redirection the splitter does not handle";
			return false;
		}
	}
	if (s->nredir >= DISPATCH_REDIR_MAX) {
		s->why = "too many redirections";
		return false;
	}
	dispatch_redir r = {.fd = fd};
	if (p[0] == '<' && (p[1] == '<' || p[1] == '>' || p[1] == '&')) {
		s->why = "redirection the splitter does not handle";
		return false;
	} else if (p[0] == '<') {
		r.op = DISPATCH_REDIR_IN;
		p++;
	} else if (p[1] == '>') {
		r.op = DISPATCH_REDIR_APPEND;
		p += 2;
	} else if (p[1] == '&') {
		if (p[2] < '0' || p[2] > '2' || !ends_token(p[3])) {
			s->why = "redirection the splitter does not handle";
			return false;
		}
		r.op = DISPATCH_REDIR_DUP;
		r.from = p[2] - '0';
		p += 3;
	} else {
		r.op = DISPATCH_REDIR_OUT;
		p++;
	}
	if (r.fd < 0)
		r.fd = r.op == DISPATCH_REDIR_IN ? 0 : 1;
	if (r.op != DISPATCH_REDIR_DUP && !(r.path = split_target(s, &p)))
		return false;
	s->redir[s->nredir++] = r;
	*pp = p;
	return true;
}

/* Split @cmd into s's words and redirections (POSIX token recognition for
 * the subset left after the shell-byte check). False (s->why set) when it
 * needs the shell. */
static bool split_all(splitter *s, const char *cmd)
{
	const char *p = cmd;
	for (;;) {
		p += strspn(p, " \t");
		if (!*p)
			return true;
		bool redir = *p == '<' || *p == '>' ||
		             (*p >= '0' && *p <= '9' && (p[1] == '<' || p[1] == '>'));
		if (!(redir ? split_redir(s, &p) : split_word(s, &p)))
			return false;
	}
}

static bool is_shell_word(const char *w)
{
	for (size_t i = 0; i < TH_ARRAY_LEN(shell_words); i++) {
		if (strcmp(w, shell_words[i]) == 0)
			return true;
	}
	return false;
}

int dispatch_split(const char *command, dispatch_argv *out, const char **why)
{
	memset(out, 0, sizeof *out);
	size_t len = strnlen(command, SPLIT_MAX_LEN + 1);
	if (len > SPLIT_MAX_LEN)
		return to_shell(why, "too long to split");
	if (strpbrk(command, shell_bytes))
		return to_shell(why, "shell syntax");
	/* Each word's or target's text is no longer than its raw form, and the
	 * NULs after them take the places of the blanks or operators between
	 * them, so len + 1 bytes hold all of them (the last NUL is the +1). The
	 * argv and redirection arrays go in front. */
	size_t words_max = len / 2 + 2;
	if (words_max > SPLIT_MAX_WORDS + 1)
		words_max = SPLIT_MAX_WORDS + 1;
	size_t arrays = words_max * sizeof(char *) + DISPATCH_REDIR_MAX * sizeof(dispatch_redir);
	char **argv = malloc(arrays + len + 1);
	if (!argv)
		return TH_ENOMEM;
	splitter s = {.mem = (char *)argv + arrays,
	              .argv = argv,
	              .argv_max = words_max,
	              .redir = (dispatch_redir *)(argv + words_max)};
	const char *reason = NULL;
	if (!split_all(&s, command))
		reason = s.why;
	else if (s.argc == 0)
		reason = "no words";
	else if (strchr(argv[0], '='))
		reason = "leading assignment";
	else if (!strchr(argv[0], '/') && is_shell_word(argv[0]))
		reason = "reserved word or builtin";
	if (reason) {
		free(argv);
		return to_shell(why, reason);
	}
	argv[s.argc] = NULL;
	out->argv = argv;
	out->argc = s.argc;
	out->redir = s.nredir ? s.redir : NULL;
	out->nredir = s.nredir;
	if (why)
		*why = s.nredir ? "words and redirections" : "plain words";
	return 1;
}
