/*
 * exec.c — the exec runner: `/bin/sh -c COMMAND` with the payload on stdin.
 *
 * The child is started with posix_spawn (safe in a threaded process: nothing
 * runs between fork and exec but the spawn actions), in its own process
 * group, with default signal dispositions (serve ignores SIGPIPE; an ignored
 * disposition would survive exec) and an empty signal mask, and with every
 * descriptor above 2 closed. Its environment is built here from scratch: the
 * event's variables plus a few harmless ones of ours — never the API secret,
 * key, database URL or secret key.
 *
 * One poll() loop feeds stdin (non-blocking, EPIPE tolerated: a command need
 * not read its input), collects stdout+stderr (one pipe, so they interleave
 * as written) up to DISPATCH_OUTPUT_MAX, and watches the child through a
 * pidfd. On timeout the whole group gets SIGTERM, then SIGKILL a second later.
 * The child is always reaped (waitpid), so no zombies.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "dispatch/dispatch.h"

#define KILL_GRACE_MS 1000
/* After the shell exits, how long to keep reading output that background
 * processes it left behind may still write to the pipe. */
#define AFTER_EXIT_READ_MS 100

/* Variables of ours a handler may see (none of them secret). */
static const char *const passed_env[] = {"PATH", "HOME", "TMPDIR", "LANG", "LC_ALL", "TZ"};

void dispatch_result_clear(dispatch_result *r)
{
	if (!r)
		return;
	free(r->text);
	memset(r, 0, sizeof *r);
}

/* Append "NAME=value" to the environment being built (skips NULL values). */
static int env_add(char **envp, size_t *n, size_t cap, const char *name, const char *value)
{
	if (!value || *n + 1 >= cap)
		return 0;
	buf b;
	buf_init(&b, 1 << 20);
	if (buf_printf(&b, "%s=%s", name, value)) {
		buf_free(&b);
		return TH_ENOMEM;
	}
	envp[(*n)++] = buf_detach(&b, NULL);
	return envp[*n - 1] ? 0 : TH_ENOMEM;
}

static void env_free(char **envp)
{
	for (size_t i = 0; envp[i]; i++)
		free(envp[i]);
}

/* The names that travel with an event (INTERFACE.md): board, list (for a
 * card move the list it went to), card and who acted, as the payload had
 * them. Values are the exact text; a name with a NUL cannot occur (the
 * payload parser refuses \u0000). */
static int env_add_names(const event *ev, char **envp, size_t *n, size_t cap)
{
	int rc = 0;
	rc |= env_add(envp, n, cap, "TRELLO_BOARD_NAME", ev->board_name);
	rc |= env_add(envp, n, cap, "TRELLO_LIST_NAME", ev->list_name);
	rc |= env_add(envp, n, cap, "TRELLO_CARD_NAME", ev->card_name);
	rc |= env_add(envp, n, cap, "TRELLO_MEMBER_NAME", ev->member);
	return rc;
}

/* The handler's environment: the event's variables (INTERFACE.md) and PATH etc. */
static int build_env(const event *ev, char **envp, size_t cap)
{
	size_t n = 0;
	int rc = 0;
	rc |= env_add(envp, &n, cap, "TRELLO_EVENT_ID", ev->id);
	rc |= env_add(envp, &n, cap, "TRELLO_ACTION_ID", ev->action_id);
	rc |= env_add(envp, &n, cap, "TRELLO_ACTION_TYPE", ev->action_type);
	rc |= env_add(envp, &n, cap, "TRELLO_WEBHOOK_ID", ev->webhook_id);
	rc |= env_add(envp, &n, cap, "TRELLO_MODEL_ID", ev->model_id);
	rc |= env_add(envp, &n, cap, "TRELLO_BOARD_ID", ev->board_id);
	rc |= env_add(envp, &n, cap, "TRELLO_LIST_ID", ev->list_id);
	rc |= env_add(envp, &n, cap, "TRELLO_CARD_ID", ev->card_id);
	rc |= env_add(envp, &n, cap, "TRELLO_SUMMARY", ev->summary);
	rc |= env_add_names(ev, envp, &n, cap);
	for (size_t i = 0; i < TH_ARRAY_LEN(passed_env); i++)
		rc |= env_add(envp, &n, cap, passed_env[i], getenv(passed_env[i]));
	envp[n] = NULL;
	return rc ? TH_ENOMEM : 0;
}

/* Keep what fits of @data in @out (bounded); count what did not. */
static void keep_output(buf *out, const char *data, size_t len, size_t *dropped)
{
	size_t room = out->len < DISPATCH_OUTPUT_MAX ? DISPATCH_OUTPUT_MAX - out->len : 0;
	size_t take = len < room ? len : room;
	if (take && buf_append(out, data, take))
		take = 0;
	*dropped += len - take;
}

/* Replace invalid UTF-8 and NUL bytes so the text can be stored and shown as JSON. */
static void sanitize_text(char *s, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		if (s[i] == '\0')
			s[i] = '?';
	}
	/* cut to the longest valid UTF-8 prefix, then replace stray bytes */
	size_t i = 0;
	while (i < len) {
		size_t n = str_utf8_seq(s + i, len - i);
		if (n) {
			i += n;
			continue;
		}
		s[i++] = '?';
	}
}

/* Kill the process group of @pid: SIGTERM, then SIGKILL after a grace. Reaps. */
static int kill_group(pid_t pid, int pidfd)
{
	int status = 0;
	kill(-pid, SIGTERM);
	int64_t until = time_mono_ms() + KILL_GRACE_MS;
	for (;;) {
		pid_t r = waitpid(pid, &status, WNOHANG);
		if (r == pid)
			break;
		int64_t left = until - time_mono_ms();
		if (left <= 0) {
			kill(-pid, SIGKILL);
			while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
			}
			break;
		}
		struct pollfd p = {.fd = pidfd, .events = POLLIN};
		if (pidfd >= 0)
			poll(&p, 1, (int)(left < 50 ? left : 50));
		else
			poll(NULL, 0, 10);
	}
	/* the shell is gone; make sure the rest of its group is too */
	kill(-pid, SIGKILL);
	return status;
}

int dispatch_exec(const char *command, const event *ev, int64_t timeout_ms, dispatch_result *out)
{
	memset(out, 0, sizeof *out);
	int in_pipe[2] = {-1, -1}, out_pipe[2] = {-1, -1};
	int pidfd = -1;
	pid_t pid = -1;
	char *envp[32] = {0};
	buf output, note;
	buf_init(&output, DISPATCH_OUTPUT_MAX + 1);
	buf_init(&note, DISPATCH_OUTPUT_MAX + 512);
	int ret = 0;
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	bool fa_ok = false, attr_ok = false;

	if (build_env(ev, envp, TH_ARRAY_LEN(envp))) {
		ret = TH_ENOMEM;
		buf_puts(&note, "out of memory");
		goto out;
	}
	if (pipe2(in_pipe, O_CLOEXEC) || pipe2(out_pipe, O_CLOEXEC)) {
		ret = TH_EIO;
		buf_printf(&note, "pipe: %s", strerror(errno));
		goto out;
	}
	if (posix_spawn_file_actions_init(&fa) == 0)
		fa_ok = true;
	if (posix_spawnattr_init(&attr) == 0)
		attr_ok = true;
	sigset_t def, empty;
	sigfillset(&def);
	sigdelset(&def, SIGKILL);
	sigdelset(&def, SIGSTOP);
	sigemptyset(&empty);
	if (!fa_ok || !attr_ok || posix_spawn_file_actions_adddup2(&fa, in_pipe[0], 0) ||
	    posix_spawn_file_actions_adddup2(&fa, out_pipe[1], 1) ||
	    posix_spawn_file_actions_adddup2(&fa, out_pipe[1], 2) ||
	    posix_spawn_file_actions_addclosefrom_np(&fa, 3) ||
	    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGDEF |
	                                        POSIX_SPAWN_SETSIGMASK) ||
	    posix_spawnattr_setpgroup(&attr, 0) || posix_spawnattr_setsigdefault(&attr, &def) ||
	    posix_spawnattr_setsigmask(&attr, &empty)) {
		ret = TH_ENOMEM;
		buf_puts(&note, "could not prepare the process");
		goto out;
	}
	char *argv[] = {"sh", "-c", (char *)command, NULL};
	int err = posix_spawn(&pid, "/bin/sh", &fa, &attr, argv, envp);
	if (err) {
		pid = -1;
		ret = TH_EIO;
		buf_printf(&note, "could not start /bin/sh: %s", strerror(err));
		goto out;
	}
	close(in_pipe[0]);
	close(out_pipe[1]);
	in_pipe[0] = out_pipe[1] = -1;
	pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (fcntl(in_pipe[1], F_SETFL, O_NONBLOCK) || fcntl(out_pipe[0], F_SETFL, O_NONBLOCK)) {
		/* cannot happen on a fresh pipe; fall back to a clean kill */
		kill_group(pid, pidfd);
		pid = -1;
		ret = TH_EIO;
		buf_puts(&note, "fcntl failed");
		goto out;
	}

	/* The payload crosses to the child here: the exact bytes Trello sent. */
	const char *payload = ev->payload ? ev->payload : "";
	size_t plen = ev->payload ? ev->payload_len : 0, sent = 0;
	if (plen == 0) {
		close(in_pipe[1]);
		in_pipe[1] = -1;
	}
	int64_t start = time_mono_ms();
	int64_t deadline = start + timeout_ms, exited_at = 0;
	bool exited = false, timed_out = false;
	int status = 0;
	size_t dropped = 0;
	char chunk[4096];
	while (out_pipe[0] >= 0 || !exited) {
		int64_t now = time_mono_ms();
		if (!exited && now >= deadline) {
			timed_out = true;
			status = kill_group(pid, pidfd);
			exited = true;
			break;
		}
		if (exited && now - exited_at >= AFTER_EXIT_READ_MS)
			break; /* background processes hold the pipe; stop reading */
		struct pollfd p[3];
		nfds_t np = 0;
		int ip = -1, op = -1, cp = -1;
		if (in_pipe[1] >= 0) {
			p[np] = (struct pollfd){.fd = in_pipe[1], .events = POLLOUT};
			ip = (int)np++;
		}
		if (out_pipe[0] >= 0) {
			p[np] = (struct pollfd){.fd = out_pipe[0], .events = POLLIN};
			op = (int)np++;
		}
		if (!exited && pidfd >= 0) {
			p[np] = (struct pollfd){.fd = pidfd, .events = POLLIN};
			cp = (int)np++;
		}
		int64_t wait = exited ? AFTER_EXIT_READ_MS - (now - exited_at) : deadline - now;
		if (!exited && pidfd < 0 && wait > 20)
			wait = 20; /* no pidfd: poll waitpid */
		int pr = poll(p, np, (int)(wait > 0 ? wait : 0));
		if (pr < 0 && errno != EINTR) {
			ret = TH_EIO;
			break;
		}
		if (ip >= 0 && pr > 0 && p[ip].revents) {
			ssize_t w = write(in_pipe[1], payload + sent, plen - sent);
			if (w > 0)
				sent += (size_t)w;
			if ((w < 0 && errno != EAGAIN && errno != EINTR) || sent == plen ||
			    (p[ip].revents & (POLLERR | POLLHUP))) {
				close(
				    in_pipe[1]); /* EPIPE: the command did not read it all; fine */
				in_pipe[1] = -1;
			}
		}
		if (op >= 0 && pr > 0 && p[op].revents) {
			ssize_t r = read(out_pipe[0], chunk, sizeof chunk);
			if (r > 0) {
				keep_output(&output, chunk, (size_t)r, &dropped);
			} else if (r == 0 || (errno != EAGAIN && errno != EINTR)) {
				close(out_pipe[0]);
				out_pipe[0] = -1;
			}
		}
		if (!exited && (cp < 0 || (pr > 0 && p[cp].revents))) {
			pid_t w = waitpid(pid, &status, WNOHANG);
			if (w == pid) {
				exited = true;
				exited_at = time_mono_ms();
				if (in_pipe[1] >= 0) {
					close(in_pipe[1]);
					in_pipe[1] = -1;
				}
			}
		}
	}
	if (!exited) {
		/* a poll failure: do not leave the process behind */
		status = kill_group(pid, pidfd);
	}
	pid = -1;
	int64_t took = time_mono_ms() - start;
	if (timed_out) {
		buf_printf(&note, "timed out after %lld ms; process group killed",
		           (long long)timeout_ms);
	} else if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
		out->ok = true;
	} else if (WIFEXITED(status)) {
		buf_printf(&note, "exit status %d", WEXITSTATUS(status));
	} else if (WIFSIGNALED(status)) {
		buf_printf(&note, "killed by signal %d (%s)", WTERMSIG(status),
		           strsignal(WTERMSIG(status)));
	}
	(void)took;
	if (output.len) {
		sanitize_text(output.data, output.len);
		buf_printf(&note, "%s%.*s", note.len ? "; output: " : "", (int)output.len,
		           output.data);
		if (dropped)
			buf_printf(&note, " [%zu more bytes dropped]", dropped);
	}
out:
	if (pid > 0)
		kill_group(pid, pidfd);
	if (pidfd >= 0)
		close(pidfd);
	for (int i = 0; i < 2; i++) {
		if (in_pipe[i] >= 0)
			close(in_pipe[i]);
		if (out_pipe[i] >= 0)
			close(out_pipe[i]);
	}
	if (fa_ok)
		posix_spawn_file_actions_destroy(&fa);
	if (attr_ok)
		posix_spawnattr_destroy(&attr);
	env_free(envp);
	buf_free(&output);
	out->text = note.len ? buf_detach(&note, NULL) : NULL;
	buf_free(&note);
	return ret;
}
