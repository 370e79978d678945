/* SPDX-License-Identifier: MIT */
/*
 * exec.c — the exec runner: COMMAND with the payload on stdin, run directly
 * when it has no shell syntax but plain file redirections (exec_split.c
 * decides and splits the words and redirections; the child does the
 * redirections before its exec), else as `/bin/sh -c COMMAND`.
 *
 * The child is started with vfork (safe in a threaded process: nothing runs
 * between vfork and exec but system calls; see spawn_one), in its own process
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
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "dispatch/dispatch.h"

#define KILL_GRACE_MS 1000
/* After the child (shell or program) exits, how long to keep reading output that background
 * processes it left behind may still write to the pipe. */
#define AFTER_EXIT_READ_MS 100

/* Room for the handler's environment (entries, with the closing NULL). */
#define ENV_MAX 48

/* Variables of ours a handler may see (none of them secret). */
static const char *const passed_env[] = {"PATH", "HOME", "TMPDIR", "LANG", "LC_ALL", "TZ"};

void dispatch_result_clear(dispatch_result *r)
{
	if (!r)
		return;
	free(r->text);
	memset(r, 0, sizeof *r);
}

/* The longest "NAME=value" a handler gets. */
#define ENV_ENTRY_MAX (1 << 20)

/* Append "NAME=value" to the environment being built (skips NULL values). */
static int env_add(char **envp, size_t *n, size_t cap, const char *name, const char *value)
{
	if (!value || *n + 1 >= cap)
		return 0;
	size_t ln = strlen(name), lv = strlen(value);
	if (ln + 1 + lv >= ENV_ENTRY_MAX)
		return TH_ENOMEM;
	char *e = malloc(ln + 1 + lv + 1);
	if (!e)
		return TH_ENOMEM;
	memcpy(e, name, ln);
	e[ln] = '=';
	memcpy(e + ln + 1, value, lv + 1);
	envp[(*n)++] = e;
	return 0;
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
	/* "delivery" (POSTed and signed by Trello) or "backfill" (listed after downtime) */
	rc |= env_add(envp, n, cap, "TRELLO_EVENT_SOURCE", event_source_name(ev->source));
	return rc;
}

/* The handler's environment: the event's variables (INTERFACE.md), PATH etc.,
 * and PWD. Every variable a handler sees is added here, and only here: the
 * same array serves both ways of starting it. PWD is what /bin/sh would add
 * on its own (dash exports it), so a command sees the same variables whether
 * it runs directly or through the shell. */
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
	char cwd[4096];
	rc |= env_add(envp, &n, cap, "PWD", getcwd(cwd, sizeof cwd));
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
	/* the child is gone; make sure the rest of its group is too */
	kill(-pid, SIGKILL);
	return status;
}

/* One running handler process and our ends of its pipes. */
typedef struct child {
	pid_t pid;  /* leads its own process group; -1 when not started / reaped */
	int pidfd;  /* watches it; -1 when the kernel has no pidfd_open */
	int in_fd;  /* write end of its stdin (non-blocking); -1 once closed */
	int out_fd; /* read end of its stdout+stderr (non-blocking); -1 once closed */
} child;

/* What feeding and watching the child found. */
typedef struct run_state {
	const char *payload; /* the bytes for its stdin (not owned) */
	size_t plen, sent;
	bool exited, timed_out;
	int status;        /* waitpid status once exited */
	int64_t exited_at; /* monotonic ms */
	size_t dropped;    /* output bytes beyond DISPATCH_OUTPUT_MAX */
} run_state;

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

/* What the child does between vfork and execve, all decided in the parent:
 * the child may only make system calls (it runs on this thread's stack, in
 * this process's memory, until it execs or exits). */
typedef struct spawn_plan {
	const char *path;
	char **argv, **envp;
	int in_rd, out_wr;      /* become 0 and 1+2 */
	const dispatch_argv *w; /* redirections, done after those (NULL: none) */
	volatile int err;       /* the child's errno when a step failed (0: it exec'd) */
} spawn_plan;

/* The kernel's struct sigaction (rt_sigaction(2)): glibc's wrapper refuses the
 * two signals it keeps for itself (cancellation, setxid), and the child must
 * reset those as well. */
struct kernel_sigaction {
	void (*handler)(int);
	unsigned long flags;
	void (*restorer)(void);
	unsigned long mask;
};

/* In the child: make @to a copy of @from that survives exec (a dup2 onto
 * itself keeps FD_CLOEXEC, so that case clears it). */
static int child_dup(int from, int to)
{
	if (from == to)
		return fcntl(to, F_SETFD, 0);
	return dup2(from, to) < 0 ? -1 : 0;
}

/* In the child: @r of the command, as sh does it: open onto its descriptor,
 * or copy another. */
static int child_redirect(const dispatch_redir *r)
{
	if (r->op == DISPATCH_REDIR_DUP)
		return child_dup(r->from, r->fd);
	int flags = r->op == DISPATCH_REDIR_IN       ? O_RDONLY
	            : r->op == DISPATCH_REDIR_APPEND ? O_WRONLY | O_CREAT | O_APPEND
	                                             : O_WRONLY | O_CREAT | O_TRUNC;
	int fd = open(r->path, flags, 0666);
	if (fd < 0 || fd == r->fd)
		return fd < 0 ? -1 : 0;
	int rc = dup2(fd, r->fd) < 0 ? -1 : 0;
	close(fd);
	return rc;
}

/* The child, from vfork to execve: default dispositions for every signal (an
 * ignored one would survive exec, and a handler must not run here), a process
 * group of its own, stdin from the pipe, stdout and stderr to the other,
 * nothing else open, then the command's redirections in the order written,
 * an empty signal mask, exec. A failed step leaves its errno for the parent
 * and exits 127. */
static _Noreturn void child_run(spawn_plan *p)
{
	struct kernel_sigaction dfl = {.handler = SIG_DFL};
	bool ok = true;
	for (int sig = 1; ok && sig < _NSIG; sig++)
		ok = sig == SIGKILL || sig == SIGSTOP ||
		     syscall(SYS_rt_sigaction, sig, &dfl, NULL, sizeof dfl.mask) == 0;
	ok = ok && setpgid(0, 0) == 0 && child_dup(p->in_rd, 0) == 0 &&
	     child_dup(p->out_wr, 1) == 0 && child_dup(p->out_wr, 2) == 0 &&
	     close_range(3, ~0U, 0) == 0;
	for (size_t i = 0; ok && p->w && i < p->w->nredir; i++)
		ok = child_redirect(&p->w->redir[i]) == 0;
	if (ok) {
		sigset_t empty;
		sigemptyset(&empty);
		sigprocmask(SIG_SETMASK, &empty, NULL);
		execve(p->path, p->argv, p->envp);
	}
	p->err = errno ? errno : EINVAL;
	_exit(127);
}

/* vfork, the child going straight to child_run: kept apart from the caller,
 * so that nothing of the caller's lives across the vfork in a register. */
__attribute__((noinline)) static pid_t vfork_child(spawn_plan *p)
{
	pid_t pid = vfork();
	if (pid == 0)
		child_run(p);
	return pid;
}

/* Start @path with @argv and @envp on the descriptors child_run sets up.
 * vfork, not posix_spawn: glibc's posix_spawn maps a fresh stack for every
 * child and unmaps it after, and that munmap, with the TLB shootdown it
 * costs in a process whose threads run on every CPU, was ~25 µs of serve's
 * CPU per delivery (bench/RESULTS.md); the vfork child runs on this thread's
 * stack instead, this thread waiting until it has exec'd. Every signal is
 * blocked across the vfork so that no handler runs in the child. Where
 * vfork is a fork (valgrind, ThreadSanitizer) a failed exec is not reported
 * here: the child exits 127, which is why find_program and
 * redirs_look_possible check first. Returns the child's errno (0 on
 * success). */
static int spawn_one(const char *path, char **argv, char **envp, int in_rd, int out_wr,
                     const dispatch_argv *w, pid_t *pid)
{
	spawn_plan plan = {
	    .path = path, .argv = argv, .envp = envp, .in_rd = in_rd, .out_wr = out_wr, .w = w};
	sigset_t all, old;
	sigfillset(&all);
	int err = pthread_sigmask(SIG_SETMASK, &all, &old);
	if (err)
		return err;
	pid_t started = vfork_child(&plan);
	err = started < 0 ? errno : plan.err;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (started > 0 && err) {
		while (waitpid(started, NULL, 0) < 0 && errno == EINTR) {
		}
	}
	if (!err)
		*pid = started;
	return err;
}

/* Can @path be started directly by execve? A regular, executable file that
 * begins as a binary (ELF) or a script with "#!"; anything else (a text file
 * without "#!", which sh would run itself) goes to the shell. */
static bool directly_executable(const char *path)
{
	struct stat st;
	if (stat(path, &st) || !S_ISREG(st.st_mode) || access(path, X_OK))
		return false;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	unsigned char magic[4] = {0};
	ssize_t n = read(fd, magic, sizeof magic);
	close(fd);
	return (n >= 2 && magic[0] == '#' && magic[1] == '!') ||
	       (n == 4 && magic[0] == 0x7f && magic[1] == 'E' && magic[2] == 'L' &&
	        magic[3] == 'F');
}

/* Find @name as the shell would (a name with a '/' as it is, else the first
 * entry of PATH that holds it; an empty entry is the working directory) and
 * copy the path into @out when it can be started directly. Deciding here,
 * before spawning, keeps the fallback to the shell independent of whether
 * the spawn reports a failed exec (it does not where vfork is a fork:
 * valgrind, ThreadSanitizer). */
static bool find_program(const char *name, char *out, size_t outsz)
{
	if (strchr(name, '/'))
		return str_copy(out, outsz, name) && directly_executable(out);
	const char *path = getenv("PATH");
	if (!path)
		return false;
	size_t ln = strlen(name);
	for (const char *p = path;; p++) {
		size_t n = strcspn(p, ":");
		/* DIR/NAME, "./NAME" for an empty entry */
		const char *dir = n ? p : ".";
		size_t nd = n ? n : 1;
		if (nd + 1 + ln < outsz) {
			memcpy(out, dir, nd);
			out[nd] = '/';
			memcpy(out + nd + 1, name, ln + 1);
			if (directly_executable(out))
				return true;
		}
		p += n;
		if (!*p)
			return false;
	}
}

/* Would sh's open of @path for @r succeed? A check without side effects
 * (stat, access) before spawning, for the reason find_program checks the
 * program: where the spawn does not report a failed redirection (vfork as a
 * fork: valgrind, ThreadSanitizer) the child would just exit 127 without a
 * word. A "no" sends the command to the shell, which then fails (or, should
 * the file have appeared meanwhile, works) as always; a wrong "yes" is caught
 * by the spawn's error where it reports one. Conservative: a file that an
 * earlier redirection of the same command would create counts as missing. */
static bool redir_looks_possible(const dispatch_redir *r)
{
	struct stat st;
	if (r->op == DISPATCH_REDIR_DUP)
		return true;
	if (stat(r->path, &st) == 0) {
		if (r->op == DISPATCH_REDIR_IN)
			return access(r->path, R_OK) == 0;
		return !S_ISDIR(st.st_mode) && access(r->path, W_OK) == 0;
	}
	if (errno != ENOENT || r->op == DISPATCH_REDIR_IN)
		return false;
	/* to be created: its directory must exist and let us add to it */
	char dir[4096];
	const char *slash = strrchr(r->path, '/');
	if (!slash)
		return access(".", W_OK | X_OK) == 0;
	size_t n = (size_t)(slash - r->path);
	if (n >= sizeof dir)
		return false;
	memcpy(dir, r->path, n);
	dir[n] = '\0';
	return stat(n ? dir : "/", &st) == 0 && S_ISDIR(st.st_mode) &&
	       access(n ? dir : "/", W_OK | X_OK) == 0;
}

static bool redirs_look_possible(const dispatch_argv *w)
{
	for (size_t i = 0; i < w->nredir; i++)
		if (!redir_looks_possible(&w->redir[i]))
			return false;
	return true;
}

/* Start @command: directly when dispatch_split finds plain words and
 * redirections (and PATH is set, so the program is looked up where the shell
 * would look), else — or when the program cannot be started that way (not
 * found, not executable, a script without #!), or a redirection fails — through
 * /bin/sh -c, which then runs it or fails exactly as it always did ("not
 * found", exit 127; "cannot create x", exit 2). A redirection that failed had
 * opened only files the shell opens again, with the same flags, before it
 * fails at the same place. Returns the spawn's error (the child's errno, 0 on
 * success); TH_ENOMEM as -1. */
static int spawn_command(const char *command, char **envp, int in_rd, int out_wr, pid_t *pid,
                         bool *shell)
{
	dispatch_argv words;
	int split = dispatch_split(command, &words, NULL);
	if (split < 0)
		return -1;
	int err = ENOENT;
	*shell = true;
	char program[4096];
	if (split == 1 && find_program(words.argv[0], program, sizeof program) &&
	    redirs_look_possible(&words)) {
		err = spawn_one(program, words.argv, envp, in_rd, out_wr, &words, pid);
		*shell = err != 0;
	}
	dispatch_argv_free(&words);
	if (*shell) {
		char *argv[] = {"sh", "-c", (char *)command, NULL};
		err = spawn_one("/bin/sh", argv, envp, in_rd, out_wr, NULL, pid);
	}
	return err;
}

/* Make the pipes, start the child on them and keep our ends in @c (the
 * child's ends are closed here). On failure @note says why and nothing is
 * left running or open. */
static int start_child(const char *command, char **envp, child *c, bool *shell, buf *note)
{
	int in_pipe[2] = {-1, -1}, out_pipe[2] = {-1, -1};
	int ret = 0;
	if (pipe2(in_pipe, O_CLOEXEC) || pipe2(out_pipe, O_CLOEXEC)) {
		ret = TH_EIO;
		buf_printf(note, "pipe: %s", strerror(errno));
		goto out;
	}
	int err = spawn_command(command, envp, in_pipe[0], out_pipe[1], &c->pid, shell);
	if (err) {
		c->pid = -1;
		ret = err < 0 ? TH_ENOMEM : TH_EIO;
		buf_printf(note, "could not start /bin/sh: %s",
		           err < 0 ? "out of memory" : strerror(err));
		goto out;
	}
	c->pidfd = (int)syscall(SYS_pidfd_open, c->pid, 0);
	c->in_fd = in_pipe[1];
	c->out_fd = out_pipe[0];
	in_pipe[1] = out_pipe[0] = -1;
	if (fcntl(c->in_fd, F_SETFL, O_NONBLOCK) || fcntl(c->out_fd, F_SETFL, O_NONBLOCK)) {
		/* cannot happen on a fresh pipe; fall back to a clean kill */
		kill_group(c->pid, c->pidfd);
		c->pid = -1;
		ret = TH_EIO;
		buf_puts(note, "fcntl failed");
	}
out:
	for (int i = 0; i < 2; i++) {
		close_fd(&in_pipe[i]);
		close_fd(&out_pipe[i]);
	}
	return ret;
}

/* Write what the child's stdin takes now. The payload crosses to the child
 * here: the exact bytes Trello sent. Closes stdin once all is written, or
 * when the child will not read more (EPIPE: a command need not read it). */
static void feed_stdin(child *c, run_state *rs, short revents)
{
	ssize_t w = write(c->in_fd, rs->payload + rs->sent, rs->plen - rs->sent);
	if (w > 0)
		rs->sent += (size_t)w;
	if ((w < 0 && errno != EAGAIN && errno != EINTR) || rs->sent == rs->plen ||
	    (revents & (POLLERR | POLLHUP)))
		close_fd(&c->in_fd);
}

/* Read what the child wrote; keep what fits in @output. Closes at EOF. */
static void drain_output(child *c, run_state *rs, buf *output)
{
	char chunk[4096];
	ssize_t r = read(c->out_fd, chunk, sizeof chunk);
	if (r > 0)
		keep_output(output, chunk, (size_t)r, &rs->dropped);
	else if (r == 0 || (errno != EAGAIN && errno != EINTR))
		close_fd(&c->out_fd);
}

/* Has the child exited? Reaps it and stops feeding it if so. */
static void check_exit(child *c, run_state *rs)
{
	if (waitpid(c->pid, &rs->status, WNOHANG) != c->pid)
		return;
	rs->exited = true;
	rs->exited_at = time_mono_ms();
	close_fd(&c->in_fd);
}

/* One poll() loop until the child has exited and its output is read (or
 * left to background processes after AFTER_EXIT_READ_MS), or until
 * @timeout_ms, when its group is killed. The child is always reaped. */
static int run_child(child *c, run_state *rs, int64_t timeout_ms, buf *output)
{
	int ret = 0;
	/* the pipe is empty: what fits goes now, without a poll first (all of a
	 * payload under the pipe's 64 KiB) */
	if (rs->plen == 0)
		close_fd(&c->in_fd);
	else
		feed_stdin(c, rs, 0);
	int64_t deadline = time_mono_ms() + timeout_ms;
	while (c->out_fd >= 0 || !rs->exited) {
		int64_t now = time_mono_ms();
		if (!rs->exited && now >= deadline) {
			rs->timed_out = true;
			break;
		}
		if (rs->exited && now - rs->exited_at >= AFTER_EXIT_READ_MS)
			break; /* background processes hold the pipe; stop reading */
		struct pollfd p[3];
		nfds_t np = 0;
		int ip = -1, op = -1, cp = -1;
		if (c->in_fd >= 0) {
			p[np] = (struct pollfd){.fd = c->in_fd, .events = POLLOUT};
			ip = (int)np++;
		}
		if (c->out_fd >= 0) {
			p[np] = (struct pollfd){.fd = c->out_fd, .events = POLLIN};
			op = (int)np++;
		}
		if (!rs->exited && c->pidfd >= 0) {
			p[np] = (struct pollfd){.fd = c->pidfd, .events = POLLIN};
			cp = (int)np++;
		}
		int64_t wait =
		    rs->exited ? AFTER_EXIT_READ_MS - (now - rs->exited_at) : deadline - now;
		if (!rs->exited && c->pidfd < 0 && wait > 20)
			wait = 20; /* no pidfd: poll waitpid */
		int pr = poll(p, np, (int)(wait > 0 ? wait : 0));
		if (pr < 0 && errno != EINTR) {
			ret = TH_EIO;
			break;
		}
		if (ip >= 0 && pr > 0 && p[ip].revents)
			feed_stdin(c, rs, p[ip].revents);
		if (op >= 0 && pr > 0 && p[op].revents)
			drain_output(c, rs, output);
		if (!rs->exited && (cp < 0 || (pr > 0 && p[cp].revents)))
			check_exit(c, rs);
	}
	if (!rs->exited) {
		/* timed out, or a poll failure: do not leave the process behind */
		rs->status = kill_group(c->pid, c->pidfd);
		rs->exited = true;
	}
	c->pid = -1;
	return ret;
}

/* The note for last_error: how the attempt ended, then its output. */
static void describe(const run_state *rs, int64_t timeout_ms, buf *output, buf *note,
                     dispatch_result *out)
{
	int st = rs->status;
	if (rs->timed_out) {
		buf_printf(note, "timed out after %lld ms; process group killed",
		           (long long)timeout_ms);
	} else if (WIFEXITED(st) && WEXITSTATUS(st) == 0) {
		out->ok = true;
	} else if (WIFEXITED(st)) {
		buf_printf(note, "exit status %d", WEXITSTATUS(st));
	} else if (WIFSIGNALED(st)) {
		buf_printf(note, "killed by signal %d (%s)", WTERMSIG(st), strsignal(WTERMSIG(st)));
	}
	if (output->len) {
		sanitize_text(output->data, output->len);
		buf_printf(note, "%s%.*s", note->len ? "; output: " : "", (int)output->len,
		           output->data);
		if (rs->dropped)
			buf_printf(note, " [%zu more bytes dropped]", rs->dropped);
	}
}

int dispatch_exec(const char *command, const event *ev, int64_t timeout_ms, dispatch_result *out)
{
	memset(out, 0, sizeof *out);
	child c = {.pid = -1, .pidfd = -1, .in_fd = -1, .out_fd = -1};
	char *envp[ENV_MAX] = {0};
	buf output, note;
	buf_init(&output, DISPATCH_OUTPUT_MAX + 1);
	buf_init(&note, DISPATCH_OUTPUT_MAX + 512);
	int ret = 0;

	if (build_env(ev, envp, TH_ARRAY_LEN(envp))) {
		ret = TH_ENOMEM;
		buf_puts(&note, "out of memory");
		goto out;
	}
	ret = start_child(command, envp, &c, &out->shell, &note);
	if (ret)
		goto out;
	run_state rs = {.payload = ev->payload ? ev->payload : "",
	                .plen = ev->payload ? ev->payload_len : 0};
	ret = run_child(&c, &rs, timeout_ms, &output);
	describe(&rs, timeout_ms, &output, &note, out);
out:
	if (c.pid > 0)
		kill_group(c.pid, c.pidfd);
	close_fd(&c.pidfd);
	close_fd(&c.in_fd);
	close_fd(&c.out_fd);
	env_free(envp);
	buf_free(&output);
	out->text = note.len ? buf_detach(&note, NULL) : NULL;
	buf_free(&note);
	return ret;
}
