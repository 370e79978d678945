/* SPDX-License-Identifier: MIT */
/* backup.c — see backup.h. */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "store/backup.h"
#include "store/identity.h"

#define BACKUP_STEP_PAGES 256 /* 1 MiB of 4 KiB pages per step */
#define BACKUP_BUSY_MS 5000   /* busy_timeout on both connections */
#define BACKUP_MAX_BUSY 600   /* 10 ms waits while a step is busy or locked: 6 s */

/* The file path of a "sqlite:" URL, or NULL for any other URL. */
static const char *sqlite_path(const char *url)
{
	if (!url || !str_starts(url, "sqlite:"))
		return NULL;
	const char *p = url + strlen("sqlite:");
	return str_starts(p, "//") ? p + 2 : p;
}

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/* @path made absolute and free of symlinks, also when the file itself does
 * not exist yet (then its directory is resolved). @dir receives the
 * resolved directory. Fails with TH_EIO naming what could not be resolved. */
static int resolve(const char *what, const char *path, char real[PATH_MAX], char dir[PATH_MAX],
                   th_error *err)
{
	char copy_d[PATH_MAX], copy_b[PATH_MAX], rdir[PATH_MAX];
	if (!str_copy(copy_d, sizeof copy_d, path) || !str_copy(copy_b, sizeof copy_b, path))
		return th_err(err, TH_EINVAL, "%s: the path is too long", what);
	const char *base = basename(copy_b);
	if (!realpath(dirname(copy_d), rdir))
		return th_err(err, TH_EIO, "%s: cannot use the directory of %s: %s", what, path,
		              strerror(errno));
	if (!*base || str_eq(base, ".") || str_eq(base, "..") || str_eq(base, "/"))
		return th_err(err, TH_EINVAL, "%s: %s does not name a file", what, path);
	if (!str_copy(dir, PATH_MAX, rdir) ||
	    !str_printf(real, PATH_MAX, "%s%s%s", rdir, str_eq(rdir, "/") ? "" : "/", base))
		return th_err(err, TH_EINVAL, "%s: the path is too long", what);
	char link[PATH_MAX];
	if (realpath(real, link) && !str_copy(real, PATH_MAX, link))
		return th_err(err, TH_EINVAL, "%s: the path is too long", what);
	return 0;
}

/* Refuse destinations that would clobber the store or be spoiled by a stale
 * WAL: @src and @dst are resolved paths. */
static int check_dest(const char *src, const char *dst, const char *dest, bool force, th_error *err)
{
	struct stat ss, ds;
	const char *sfx[] = {"", "-wal", "-shm", "-journal"};
	for (size_t i = 0; i < TH_ARRAY_LEN(sfx); i++) {
		char name[PATH_MAX + 16];
		if (str_printf(name, sizeof name, "%s%s", src, sfx[i]) && str_eq(name, dst))
			return th_err(err, TH_EINVAL,
			              "backup: %s is the store%s%s; choose another path", dest,
			              *sfx[i] ? "'s own file " : " itself", sfx[i]);
	}
	bool exists = stat(dst, &ds) == 0;
	if (!exists && errno != ENOENT)
		return th_err(err, TH_EIO, "backup: cannot examine %s: %s", dest, strerror(errno));
	if (exists && stat(src, &ss) == 0 && ss.st_dev == ds.st_dev && ss.st_ino == ds.st_ino)
		return th_err(err, TH_EINVAL, "backup: %s is the store itself; choose another path",
		              dest);
	if (exists && S_ISDIR(ds.st_mode))
		return th_err(err, TH_EINVAL, "backup: %s is a directory; name the file to write",
		              dest);
	if (exists && !force)
		return th_err(
		    err, TH_EEXISTS,
		    "backup: %s exists; pass --force to replace it, or choose another path", dest);
	char wal[PATH_MAX + 8];
	if (!str_printf(wal, sizeof wal, "%s-wal", dst))
		return th_err(err, TH_EINVAL, "backup: the path is too long");
	if (stat(wal, &ds) == 0)
		return th_err(err, TH_EEXISTS,
		              "backup: %s-wal exists (a program has the old copy open, or did not "
		              "close it cleanly); SQLite would replay it into the new copy: close "
		              "that program or remove the file",
		              dest);
	return 0;
}

/* Copy every page of @src's main database into @dst, step by step. When the
 * source is in WAL mode a read transaction is held across the steps: every
 * step then reads the same snapshot (the copy is consistent and never starts
 * over), and the writer is not blocked by a WAL reader. */
static int copy_pages(sqlite3 *src, sqlite3 *dst, int64_t *out_pages, th_error *err)
{
	sqlite3_stmt *q = NULL;
	bool wal = false, in_txn = false;
	int ret = 0;
	if (sqlite3_prepare_v2(src, "PRAGMA journal_mode", -1, &q, NULL) == SQLITE_OK &&
	    sqlite3_step(q) == SQLITE_ROW)
		wal = str_eq((const char *)sqlite3_column_text(q, 0), "wal");
	sqlite3_finalize(q);
	q = NULL;
	if (wal) {
		/* BEGIN is deferred: the SELECT is what starts the read transaction */
		if (sqlite3_exec(src, "BEGIN", NULL, NULL, NULL) != SQLITE_OK)
			goto src_fail;
		in_txn = true;
		if (sqlite3_prepare_v2(src, "SELECT count(*) FROM sqlite_master", -1, &q, NULL) !=
		        SQLITE_OK ||
		    sqlite3_step(q) != SQLITE_ROW)
			goto src_fail;
		sqlite3_finalize(q);
		q = NULL;
	}
	sqlite3_backup *b = sqlite3_backup_init(dst, "main", src, "main");
	if (!b) {
		ret = th_err(err, TH_ESTORE, "backup: starting the copy: %s", sqlite3_errmsg(dst));
		goto out;
	}
	int rc, busy = 0;
	do {
		rc = sqlite3_backup_step(b, BACKUP_STEP_PAGES);
		if (rc == SQLITE_BUSY || rc == SQLITE_LOCKED) {
			if (++busy > BACKUP_MAX_BUSY)
				break;
			sleep_ms(10);
		} else if (!wal && rc == SQLITE_OK) {
			sleep_ms(2); /* rollback-journal mode: let a writer in between steps */
		}
	} while (rc == SQLITE_OK || rc == SQLITE_BUSY || rc == SQLITE_LOCKED);
	*out_pages = sqlite3_backup_pagecount(b);
	if (sqlite3_backup_finish(b) != SQLITE_OK || rc != SQLITE_DONE)
		ret = th_err(err, TH_ESTORE, "backup: copying the store: %s%s",
		             rc == SQLITE_DONE ? sqlite3_errmsg(dst) : sqlite3_errstr(rc),
		             rc == SQLITE_BUSY || rc == SQLITE_LOCKED
		                 ? " (the store stayed locked; try again)"
		                 : "");
	goto out;
src_fail:
	ret = th_err(err, TH_ESTORE, "backup: reading the store: %s", sqlite3_errmsg(src));
out:
	sqlite3_finalize(q);
	if (in_txn)
		sqlite3_exec(src, "COMMIT", NULL, NULL, NULL);
	return ret;
}

/* Check the copy and read its schema version (0 without schema_migrations). */
static int verify_copy(sqlite3 *dst, int *out_version, th_error *err)
{
	sqlite3_stmt *q = NULL;
	int ret = 0;
	*out_version = 0;
	if (sqlite3_prepare_v2(dst, "PRAGMA quick_check", -1, &q, NULL) != SQLITE_OK ||
	    sqlite3_step(q) != SQLITE_ROW) {
		ret = th_err(err, TH_ESTORE, "backup: checking the copy: %s", sqlite3_errmsg(dst));
		goto out;
	}
	if (!str_eq((const char *)sqlite3_column_text(q, 0), "ok")) {
		ret = th_err(err, TH_ESTORE, "backup: the copy failed its check: %s",
		             (const char *)sqlite3_column_text(q, 0));
		goto out;
	}
	sqlite3_finalize(q);
	q = NULL;
	if (sqlite3_prepare_v2(dst, "SELECT coalesce(max(version), 0) FROM schema_migrations", -1,
	                       &q, NULL) == SQLITE_OK &&
	    sqlite3_step(q) == SQLITE_ROW)
		*out_version = sqlite3_column_int(q, 0);
out:
	sqlite3_finalize(q);
	return ret;
}

/* fsync @path (a file or a directory). */
static int sync_path(const char *path, bool dir, th_error *err)
{
	int fd = open(path, (dir ? O_RDONLY | O_DIRECTORY : O_RDONLY) | O_CLOEXEC);
	if (fd < 0 || fsync(fd) != 0) {
		int e = errno;
		if (fd >= 0)
			close(fd);
		return th_err(err, TH_EIO, "backup: syncing %s: %s", path, strerror(e));
	}
	return close(fd) == 0
	           ? 0
	           : th_err(err, TH_EIO, "backup: syncing %s: %s", path, strerror(errno));
}

/* Put the finished temporary file @tmp in place as @dst: without @force by
 * link(2), which refuses atomically when @dst appeared meanwhile; with it by
 * rename(2), which replaces atomically. */
static int publish(const char *tmp, const char *dst, const char *dest, bool force, th_error *err)
{
	if (!force) {
		if (link(tmp, dst) == 0) {
			unlink(tmp);
			return 0;
		}
		if (errno == EEXIST)
			return th_err(
			    err, TH_EEXISTS,
			    "backup: %s exists; pass --force to replace it, or choose another "
			    "path",
			    dest);
		if (errno != EPERM && errno != EOPNOTSUPP && errno != ENOSYS)
			return th_err(err, TH_EIO, "backup: cannot create %s: %s", dest,
			              strerror(errno));
		/* a file system without hard links: the check before the copy must do */
	}
	if (rename(tmp, dst) != 0)
		return th_err(err, TH_EIO, "backup: cannot create %s: %s", dest, strerror(errno));
	return 0;
}

int store_backup(const char *database_url, const char *dest, bool force, store_backup_info *out,
                 th_error *err)
{
	store_backup_info info = {0, 0, 0, 0};
	const char *path = sqlite_path(database_url);
	if (!path)
		return th_err(err, TH_ECONFIG,
		              "backup copies SQLite stores; DATABASE_URL names another kind");
	if (!*path || str_eq(path, ":memory:"))
		return th_err(err, TH_ECONFIG,
		              "backup: DATABASE_URL names no SQLite file (sqlite:PATH) to copy");
	if (!dest || !*dest)
		return th_err(err, TH_EINVAL, "backup: give the PATH of the copy");
	struct stat st;
	if (stat(path, &st) != 0)
		return th_err(err, errno == ENOENT ? TH_ENOTFOUND : TH_EIO,
		              "backup: no store at %s (%s); check DATABASE_URL", path,
		              strerror(errno));
	char src_real[PATH_MAX], src_dir[PATH_MAX], dst_real[PATH_MAX], dst_dir[PATH_MAX];
	int ret = resolve("DATABASE_URL", path, src_real, src_dir, err);
	if (!ret)
		ret = resolve("backup", dest, dst_real, dst_dir, err);
	if (!ret)
		ret = check_dest(src_real, dst_real, dest, force, err);
	if (ret)
		return ret;

	char tmp[PATH_MAX + 32], journal[PATH_MAX + 48];
	const char *base = strrchr(dst_real, '/') + 1;
	if (!str_printf(tmp, sizeof tmp, "%s/.%s.backup-XXXXXX", dst_dir, base))
		return th_err(err, TH_EINVAL, "backup: the path is too long");
	int fd = mkstemp(tmp); /* mode 0600 */
	if (fd < 0)
		return th_err(err, TH_EIO,
		              "backup: cannot write in %s: %s (choose a writable directory)",
		              dst_dir, strerror(errno));
	close(fd);
	str_printf(journal, sizeof journal, "%s-journal", tmp);

	sqlite3 *src = NULL, *dst = NULL;
	int64_t t0 = time_mono_ms();
	if (sqlite3_open_v2(path, &src, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) !=
	    SQLITE_OK) {
		ret = th_err(err, TH_ESTORE, "backup: cannot open the store %s: %s", path,
		             src ? sqlite3_errmsg(src) : "out of memory");
		goto out;
	}
	if (sqlite3_open_v2(tmp, &dst, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) !=
	    SQLITE_OK) {
		ret = th_err(err, TH_EIO, "backup: cannot write %s: %s", tmp,
		             dst ? sqlite3_errmsg(dst) : "out of memory");
		goto out;
	}
	sqlite3_busy_timeout(src, BACKUP_BUSY_MS);
	sqlite3_busy_timeout(dst, BACKUP_BUSY_MS);
	/* the temporary file needs no crash safety of its own: it is synced once,
	 * whole, below, and renamed into place only then */
	if (sqlite3_exec(dst, "PRAGMA journal_mode = MEMORY; PRAGMA synchronous = OFF", NULL, NULL,
	                 NULL) != SQLITE_OK) {
		ret = th_err(err, TH_EIO, "backup: preparing %s: %s", tmp, sqlite3_errmsg(dst));
		goto out;
	}
	if ((ret = copy_pages(src, dst, &info.pages, err)) != 0 ||
	    (ret = verify_copy(dst, &info.schema_version, err)) != 0)
		goto out;
	sqlite3_close(dst);
	dst = NULL;
	if ((ret = sync_path(tmp, false, err)) != 0)
		goto out;
	if (stat(tmp, &st) == 0)
		info.bytes = (int64_t)st.st_size;
	if ((ret = publish(tmp, dst_real, dest, force, err)) != 0 ||
	    (ret = sync_path(dst_dir, true, err)) != 0)
		goto out;
	info.ms = time_mono_ms() - t0;
	if (out)
		*out = info;
out:
	sqlite3_close(dst);
	sqlite3_close(src);
	unlink(journal);
	if (ret)
		unlink(tmp); /* after a successful publish it is gone already */
	return ret;
}

/* Append @s to @b in single quotes for a POSIX shell. */
static int shell_quote(buf *b, const char *s)
{
	int rc = buf_putc(b, '\'');
	for (; !rc && *s; s++)
		rc = *s == '\'' ? buf_puts(b, "'\\''") : buf_putc(b, *s);
	return rc ? rc : buf_putc(b, '\'');
}

int store_backup_pg_hint(const char *database_url, const char *dest, buf *out)
{
	const char *u = database_url ? database_url : "";
	if (!str_starts(u, "postgresql://") && !str_starts(u, "postgres://"))
		return TH_EINVAL;
	/* the URL without trellohook's own parameters, which libpq refuses */
	buf url;
	buf_init(&url, 8192);
	int rc = store_libpq_url(&url, u);
	char *masked = rc ? NULL : malloc(url.len + 8);
	if (masked)
		mask_url(url.data, masked, url.len + 8);
	if (url.data)
		explicit_bzero(url.data, url.len);
	buf_free(&url);
	if (!masked)
		return rc ? rc : TH_ENOMEM;
	rc = buf_puts(out, "pg_dump --format=custom --file=");
	if (!rc)
		rc = shell_quote(out, dest && *dest ? dest : "trellohook.dump");
	if (!rc)
		rc = buf_putc(out, ' ');
	if (!rc)
		rc = shell_quote(out, masked);
	free(masked);
	return rc;
}
