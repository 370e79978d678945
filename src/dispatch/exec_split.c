/* SPDX-License-Identifier: MIT */
/*
 * exec_split.c — decide whether an exec handler's command needs a shell, and
 * when it does not, split it into argv words exactly as /bin/sh would.
 *
 * The command is text an operator typed (`handler add --exec`), stored and
 * handed to us unchanged. The rule is deliberately narrow: a command runs
 * without a shell only when the shell could not do anything with it but
 * split words and remove quotes. Anything else — expansion, redirection,
 * pipes, lists, globbing, comments, a leading VAR=x assignment, a reserved
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
 *  - '' and "" make an (empty) word of their own.
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
static const char shell_bytes[] = "$`|&;<>(){}*?[]~#\n";

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

/* Remove quotes from @cmd into @mem (at least strlen(cmd)+1 bytes), one NUL
 * after each word. Returns the number of words, -1 when a quote is not
 * closed or -2 when a backslash ends the command (both left to the shell). */
static long unquote(const char *cmd, char *mem)
{
	enum { PLAIN, SINGLE, DOUBLE } q = PLAIN;
	bool in_word = false;
	long words = 0;
	size_t o = 0;
	for (const char *p = cmd; *p; p++) {
		char c = *p;
		if (q == SINGLE) {
			if (c == '\'')
				q = PLAIN;
			else
				mem[o++] = c;
			continue;
		}
		if (q == DOUBLE) {
			if (c == '"')
				q = PLAIN;
			else if (c == '\\' && (p[1] == '"' || p[1] == '\\'))
				mem[o++] = *++p;
			else
				mem[o++] = c;
			continue;
		}
		if (c == ' ' || c == '\t') {
			if (in_word) {
				mem[o++] = '\0';
				in_word = false;
			}
			continue;
		}
		if (!in_word) {
			in_word = true;
			words++;
		}
		if (c == '\'') {
			q = SINGLE;
		} else if (c == '"') {
			q = DOUBLE;
		} else if (c == '\\') {
			if (!p[1])
				return -2;
			mem[o++] = *++p;
		} else {
			mem[o++] = c;
		}
	}
	if (q != PLAIN)
		return -1;
	if (in_word)
		mem[o++] = '\0';
	return words;
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
	/* Each word's text is no longer than its raw form, and the words' NULs
	 * take the places of the blanks between them, so len + 1 bytes hold all
	 * of them (the last NUL is the +1). The argv array goes in front. */
	size_t words_max = len / 2 + 2;
	if (words_max > SPLIT_MAX_WORDS + 1)
		words_max = SPLIT_MAX_WORDS + 1;
	char **argv = malloc(words_max * sizeof *argv + len + 1);
	if (!argv)
		return TH_ENOMEM;
	char *mem = (char *)(argv + words_max);
	long n = unquote(command, mem);
	const char *reason = NULL;
	if (n == -1)
		reason = "unbalanced quote";
	else if (n == -2)
		reason = "trailing backslash";
	else if (n == 0)
		reason = "no words";
	else if ((size_t)n >= words_max)
		reason = "too many words";
	else if (strchr(mem, '='))
		reason = "leading assignment";
	else if (!strchr(mem, '/') && is_shell_word(mem))
		reason = "reserved word or builtin";
	if (reason) {
		free(argv);
		return to_shell(why, reason);
	}
	char *w = mem;
	for (long i = 0; i < n; i++) {
		argv[i] = w;
		w += strlen(w) + 1;
	}
	argv[n] = NULL;
	out->argv = argv;
	out->argc = (size_t)n;
	if (why)
		*why = "plain words";
	return 1;
}
