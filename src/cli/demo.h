/* SPDX-License-Identifier: MIT */
/*
 * demo.h — private header of `trellohook demo` (cmd_demo.c, the command and
 * its set-up steps; demo_child.c, the two child processes it runs).
 * Single-threaded: one demo per process.
 */
#ifndef TH_CLI_DEMO_H
#define TH_CLI_DEMO_H

#include <jansson.h>
#include <limits.h>
#include <signal.h>
#include <stddef.h>
#include <sys/types.h>

#define READY_TIMEOUT_MS 20000   /* per child, to its ready line */
#define STOP_TIMEOUT_MS 10000    /* SIGTERM, then SIGKILL */
#define HANDLED_TIMEOUT_MS 20000 /* the handler's runs for the demo's actions */
#define MOCK_BODY_MAX ((size_t)4 << 20)

typedef struct child {
	const char *name; /* "trello-mock", "serve" */
	pid_t pid;        /* 0: not running */
	int out;          /* read end of its stdout, -1 */
	int log;          /* DIR/NAME.log, its stderr (and stdout after the ready line) */
} child;

typedef struct demo {
	char dir[PATH_MAX];       /* absolute */
	const char *dir_shown;    /* as the user gave it, for the printed commands */
	char self[PATH_MAX];      /* our own binary */
	char bin_shown[PATH_MAX]; /* relative to the cwd when below it */
	char mock_bin[PATH_MAX];  /* "" : search PATH */
	char listen[300];         /* serve: HOST:PORT (port chosen when 0) */
	char domain[320];         /* http://HOST:PORT */
	const char *mock_listen;
	char mock_url[320];  /* http://H:P/1 */
	char mock_base[320]; /* http://H:P */
	char token[80];      /* the demo's Trello token on the mock */
	json_t *state;       /* DIR/demo.json */
	child mock, serve;
	int sigfd;
	sigset_t oldmask;
	int handler_log; /* DIR/handler.log, read side, -1 */
} demo;

/* ---- demo_child.c ---------------------------------------------------------------- */

/* The environment of serve: ours without the variables in @vars ("NAME=value"),
 * then those. The array is malloc'd (free() it); its strings are borrowed. */
char **demo_serve_env(const char *const *vars, size_t nvars);
/* Fork and exec @argv (PATH searched when @path is NULL) with @envp; stdout
 * to a pipe (ch->out), stderr to ch->log. Returns 0 or an exit code (printed). */
int demo_child_start(demo *d, child *ch, const char *path, char *const argv[], char *const envp[]);
/* Copy whatever the child wrote to stdout since into its log. */
void demo_child_drain(child *ch);
/* Wait (READY_TIMEOUT_MS, or a signal) for a stdout line starting with
 * @prefix; the rest of it goes to @out. Returns 0 or an exit code (printed). */
int demo_child_ready(demo *d, child *ch, const char *prefix, char *out, size_t outsz);
/* SIGTERM, then SIGKILL after STOP_TIMEOUT_MS; reap. 0 for a clean exit. */
int demo_child_stop(child *ch);

#endif
