/* SPDX-License-Identifier: MIT */
/* peer.c — see peer.h. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "store/identity.h"
#include "store/peer.h"

/* The deadman-switch byte of SQLite's unix WAL index: the eight WAL locks
 * take bytes 120–127 of the -shm file, this one follows them. */
#define SHM_DMS_OFFSET 128

/* Read at most @size - 1 bytes of /proc/@pid/@name into @out; its length, or
 * -1 when the process is gone or hidden. */
static ssize_t read_proc(long pid, const char *name, char *out, size_t size)
{
	char path[64];
	if (!str_printf(path, sizeof path, "/proc/%ld/%s", pid, name))
		return -1;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t n;
	while ((n = read(fd, out, size - 1)) < 0 && errno == EINTR)
		;
	close(fd);
	out[n > 0 ? n : 0] = '\0';
	return n;
}

/* A plain word: what a subcommand looks like ("serve", "webhook"). */
static bool plain_word(const char *s)
{
	if (!*s || strlen(s) > 24)
		return false;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || *s == '-'))
			return false;
	return true;
}

/* @what names process @pid for people: its name from /proc (the kernel's
 * 15-byte comm), and for trellohook its subcommand. No other argument is
 * read: `webhook add --token` carries a secret. */
static void describe(long pid, char *what, size_t size)
{
	char comm[32], cmdline[256];
	*what = '\0';
	ssize_t n = read_proc(pid, "comm", comm, sizeof comm);
	if (n <= 0)
		return;
	comm[strcspn(comm, "\n")] = '\0';
	if (!str_copy(what, size, comm))
		*what = '\0';
	n = read_proc(pid, "cmdline", cmdline, sizeof cmdline);
	/* argv[0] NUL argv[1] NUL …: the subcommand is the second string */
	size_t first = n > 0 ? strnlen(cmdline, (size_t)n) : 0;
	if (str_eq(comm, "trellohook") && n > 0 && first + 1 < (size_t)n) {
		const char *sub = cmdline + first + 1;
		char both[64];
		if (plain_word(sub) && str_printf(both, sizeof both, "%s %s", comm, sub))
			str_copy(what, size, both);
	}
}

int store_sqlite_peer(const char *database_url, store_peer *out, th_error *err)
{
	out->pid = 0;
	out->what[0] = '\0';
	const char *path = store_sqlite_file(database_url);
	char shm[PATH_MAX + 8];
	if (!path || !*path || str_eq(path, ":memory:"))
		return 0; /* not a file: nobody else can have it open */
	if (!str_printf(shm, sizeof shm, "%s-shm", path))
		return th_err(err, TH_EINVAL, "DATABASE_URL: the path is too long");
	/* read-only: never create the index, and never disturb it */
	int fd = open(shm, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		if (errno == ENOENT) /* no connection has the store open in WAL mode */
			return 0;
		return th_err(err, TH_EIO,
		              "cannot examine %s (to see whether serve has the store "
		              "open): %s",
		              shm, strerror(errno));
	}
	struct flock fl = {
	    .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = SHM_DMS_OFFSET, .l_len = 1};
	int rc = fcntl(fd, F_GETLK, &fl);
	int e = errno;
	close(fd); /* this process holds no lock on it (see peer.h) */
	if (rc != 0)
		return th_err(err, TH_EIO, "cannot read the locks on %s: %s", shm, strerror(e));
	if (fl.l_type == F_UNLCK)
		return 0;
	/* the kernel reports 0 for a holder outside this PID namespace */
	out->pid = fl.l_pid > 0 ? (long)fl.l_pid : -1;
	if (out->pid > 0)
		describe(out->pid, out->what, sizeof out->what);
	return 0;
}

void store_peer_describe(const store_peer *p, char *out, size_t outsz)
{
	if (p->pid < 0)
		str_copy(out, outsz, "a process this one cannot see (in another container?)");
	else if (!*p->what || !str_printf(out, outsz, "process %ld (%s)", p->pid, p->what))
		str_printf(out, outsz, "process %ld", p->pid);
}
