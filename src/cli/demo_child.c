/* SPDX-License-Identifier: MIT */
/* demo_child.c — the children of `trellohook demo` (trello-mock and serve):
 * start with the right environment, wait for their ready line, copy their
 * output to their logs, stop them in order. See cmd_demo.c. */
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/demo.h"

/* ---- children ------------------------------------------------------------------ */

/* The environment of serve: ours without the variables we set, then those. */
char **demo_serve_env(const char *const *vars, size_t nvars)
{
	size_t n = 0;
	while (environ[n])
		n++;
	char **env = calloc(n + nvars + 1, sizeof *env);
	if (!env)
		return NULL;
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		bool ours = false;
		for (size_t j = 0; j < nvars && !ours; j++) {
			size_t len = (size_t)(strchr(vars[j], '=') - vars[j]) + 1;
			ours = strncmp(environ[i], vars[j], len) == 0;
		}
		if (!ours)
			env[k++] = environ[i];
	}
	for (size_t j = 0; j < nvars; j++)
		env[k++] = (char *)vars[j];
	return env;
}

/* Fork and exec @argv (PATH searched when @path is NULL) with @envp; stdout
 * to a pipe (ch->out), stderr to ch->log. Only async-signal-safe calls happen
 * in the child before exec. */
int demo_child_start(demo *d, child *ch, const char *path, char *const argv[], char *const envp[])
{
	int pfd[2];
	if (pipe2(pfd, O_CLOEXEC))
		return cli_fail(EXIT_FAIL, "demo: pipe: %s", strerror(errno));
	int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
	pid_t parent = getpid();
	fflush(NULL);
	pid_t pid = fork();
	if (pid < 0) {
		close(pfd[0]);
		close(pfd[1]);
		if (devnull >= 0)
			close(devnull);
		return cli_fail(EXIT_FAIL, "demo: fork: %s", strerror(errno));
	}
	if (pid == 0) {
		/* die with the demo, even when it is SIGKILLed */
		if (prctl(PR_SET_PDEATHSIG, SIGTERM) || getppid() != parent)
			_exit(127);
		setpgid(0, 0); /* a terminal's Ctrl-C reaches the demo, which stops us in order */
		sigprocmask(SIG_SETMASK, &d->oldmask, NULL);
		if ((devnull >= 0 && dup2(devnull, 0) < 0) || dup2(pfd[1], 1) < 0 ||
		    dup2(ch->log, 2) < 0)
			_exit(127);
		if (path)
			execve(path, argv, envp);
		else
			execvpe(argv[0], argv, envp);
		static const char msg[] = "demo: cannot execute the program\n";
		ssize_t w = write(2, msg, sizeof msg - 1);
		(void)w;
		_exit(127);
	}
	close(pfd[1]);
	if (devnull >= 0)
		close(devnull);
	ch->pid = pid;
	ch->out = pfd[0];
	return 0;
}

/* Copy whatever @ch wrote on stdout into its log (non-blocking). */
void demo_child_drain(child *ch)
{
	if (ch->out < 0)
		return;
	char tmp[4096];
	for (;;) {
		struct pollfd p = {ch->out, POLLIN, 0};
		if (poll(&p, 1, 0) <= 0 || !(p.revents & (POLLIN | POLLHUP)))
			return;
		ssize_t n = read(ch->out, tmp, sizeof tmp);
		if (n <= 0) {
			close(ch->out);
			ch->out = -1;
			return;
		}
		ssize_t w = write(ch->log, tmp, (size_t)n);
		(void)w;
	}
}

/* Wait for @ch's first stdout line starting with @prefix; its rest (up to the
 * line end) goes to @out. Fails when the child exits or the time runs out. */
int demo_child_ready(demo *d, child *ch, const char *prefix, char *out, size_t outsz)
{
	buf line;
	buf_init(&line, 4096);
	int64_t deadline = time_mono_ms() + READY_TIMEOUT_MS;
	int rc = -1;
	while (time_mono_ms() < deadline) {
		struct pollfd p[2] = {{ch->out, POLLIN, 0}, {d->sigfd, POLLIN, 0}};
		int n = poll(p, 2, 200);
		if (n < 0 && errno != EINTR)
			break;
		if (p[1].revents & POLLIN) {
			cli_fail(EXIT_FAIL, "demo: interrupted while %s was starting", ch->name);
			goto out;
		}
		if (!(p[0].revents & (POLLIN | POLLHUP)))
			continue;
		char c;
		ssize_t r = read(ch->out, &c, 1);
		if (r <= 0)
			break; /* it exited */
		if (c != '\n') {
			if (buf_putc(&line, c))
				break;
			continue;
		}
		if (str_starts(line.data, prefix)) {
			str_copy(out, outsz, line.data + strlen(prefix));
			rc = 0;
			goto out;
		}
		ssize_t w = write(ch->log, line.data ? line.data : "", line.len);
		w = write(ch->log, "\n", 1);
		(void)w;
		buf_reset(&line);
	}
	cli_fail(EXIT_FAIL, "demo: %s did not start (see %s/%s.log)", ch->name, d->dir_shown,
	         str_eq(ch->name, "serve") ? "serve" : "mock");
out:
	buf_free(&line);
	return rc;
}

/* SIGTERM, wait up to STOP_TIMEOUT_MS, then SIGKILL. Returns its exit status
 * (0 for a clean exit). */
int demo_child_stop(child *ch)
{
	int status = 0, rc = 0;
	if (ch->pid > 0) {
		kill(ch->pid, SIGTERM);
		int64_t deadline = time_mono_ms() + STOP_TIMEOUT_MS;
		pid_t w;
		while ((w = waitpid(ch->pid, &status, WNOHANG)) == 0 && time_mono_ms() < deadline) {
			demo_child_drain(ch);
			struct timespec ts = {0, 50 * 1000 * 1000};
			nanosleep(&ts, NULL);
		}
		if (w == 0) {
			fprintf(stderr, "trellohook: demo: %s did not stop in %d s; killing it\n",
			        ch->name, STOP_TIMEOUT_MS / 1000);
			kill(ch->pid, SIGKILL);
			waitpid(ch->pid, &status, 0);
			rc = -1;
		} else if (w < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
			rc = -1;
		}
		ch->pid = 0;
	}
	demo_child_drain(ch);
	if (ch->out >= 0)
		close(ch->out);
	ch->out = -1;
	return rc;
}
