/* SPDX-License-Identifier: MIT */
/* backup.c — see backup.h: the copy out (backup) and back (restore). */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "store/backup.h"
#include "store/identity.h"
#include "store/peer.h"
#include "store/schema_check.h"

#define BACKUP_STEP_PAGES 256 /* 1 MiB of 4 KiB pages per step */
#define BACKUP_BUSY_MS 5000   /* busy_timeout on both connections */
#define BACKUP_MAX_BUSY 600   /* 10 ms waits while a step is busy or locked: 6 s */

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
static int copy_pages(const char *what, sqlite3 *src, sqlite3 *dst, int64_t *out_pages,
                      th_error *err)
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
		ret =
		    th_err(err, TH_ESTORE, "%s: starting the copy: %s", what, sqlite3_errmsg(dst));
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
		ret = th_err(err, TH_ESTORE, "%s: copying the store: %s%s", what,
		             rc == SQLITE_DONE ? sqlite3_errmsg(dst) : sqlite3_errstr(rc),
		             rc == SQLITE_BUSY || rc == SQLITE_LOCKED
		                 ? " (the store stayed locked; try again)"
		                 : "");
	goto out;
src_fail:
	ret = th_err(err, TH_ESTORE, "%s: reading the store: %s", what, sqlite3_errmsg(src));
out:
	sqlite3_finalize(q);
	if (in_txn)
		sqlite3_exec(src, "COMMIT", NULL, NULL, NULL);
	return ret;
}

/* One integer PRAGMA of @db into @out; false when it cannot be read. */
static bool pragma_int(sqlite3 *db, const char *sql, int64_t *out)
{
	sqlite3_stmt *q = NULL;
	bool ok =
	    sqlite3_prepare_v2(db, sql, -1, &q, NULL) == SQLITE_OK && sqlite3_step(q) == SQLITE_ROW;
	if (ok)
		*out = sqlite3_column_int64(q, 0);
	sqlite3_finalize(q);
	return ok;
}

/* "812 KiB", "3.4 MiB", "12.0 GiB" */
static void size_words(int64_t bytes, char out[32])
{
	if (bytes < (1 << 20))
		str_printf(out, 32, "%lld KiB", (long long)(bytes >> 10));
	else if (bytes < (1LL << 30))
		str_printf(out, 32, "%.1f MiB", (double)bytes / (1 << 20));
	else
		str_printf(out, 32, "%.1f GiB", (double)bytes / (1LL << 30));
}

/* Refuse before the copy starts when it cannot fit: it takes the source's
 * pages (its WAL's included) in @dst_dir. A size or free space that cannot
 * be read lets the copy go on; a disk that fills meanwhile still fails it. */
static int check_room(const char *what, sqlite3 *src, const char *dst_dir, th_error *err)
{
	int64_t pages = 0, page_size = 0;
	struct statvfs v;
	if (!pragma_int(src, "PRAGMA page_count", &pages) ||
	    !pragma_int(src, "PRAGMA page_size", &page_size) || statvfs(dst_dir, &v) != 0)
		return 0;
	int64_t need = pages * page_size, avail = (int64_t)v.f_bavail * (int64_t)v.f_frsize;
	if (need <= avail)
		return 0;
	char needs[32], free_[32];
	size_words(need, needs);
	size_words(avail, free_);
	return th_err(err, TH_EIO,
	              "%s: the copy needs %s in %s, where %s are free; free space there "
	              "first%s",
	              what, needs, dst_dir, free_,
	              str_eq(what, "backup") ? ", or choose a PATH on another file system" : "");
}

/* Check the copy and read its schema version (0 without schema_migrations). */
static int verify_copy(const char *what, sqlite3 *dst, int *out_version, th_error *err)
{
	sqlite3_stmt *q = NULL;
	int ret = 0;
	*out_version = 0;
	if (sqlite3_prepare_v2(dst, "PRAGMA quick_check", -1, &q, NULL) != SQLITE_OK ||
	    sqlite3_step(q) != SQLITE_ROW) {
		ret =
		    th_err(err, TH_ESTORE, "%s: checking the copy: %s", what, sqlite3_errmsg(dst));
		goto out;
	}
	if (!str_eq((const char *)sqlite3_column_text(q, 0), "ok")) {
		ret = th_err(err, TH_ESTORE, "%s: the copy failed its check: %s", what,
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

/* Copy the SQLite file @src (a live store is read as one snapshot) into a
 * new temporary file beside @dst_real in @dst_dir, ".NAME.@what-XXXXXX"
 * (mode 0600: a store holds tokens), checked (quick_check), its schema
 * version and size into *@info, and fsynced; its path into @tmp. @what
 * ("backup", "restore") also begins the messages. On failure nothing is
 * left. */
static int copy_to_temp(const char *what, const char *src_path, const char *dst_real,
                        const char *dst_dir, char tmp[PATH_MAX + 32], store_backup_info *info,
                        th_error *err)
{
	char journal[PATH_MAX + 48];
	const char *base = strrchr(dst_real, '/') + 1;
	if (!str_printf(tmp, PATH_MAX + 32, "%s/.%s.%s-XXXXXX", dst_dir, base, what))
		return th_err(err, TH_EINVAL, "%s: the path is too long", what);
	int fd = mkstemp(tmp); /* mode 0600 */
	if (fd < 0)
		return th_err(err, TH_EIO,
		              "%s: cannot write in %s: %s (choose a writable directory)", what,
		              dst_dir, strerror(errno));
	close(fd);
	str_printf(journal, sizeof journal, "%s-journal", tmp);

	sqlite3 *src = NULL, *dst = NULL;
	int ret = 0;
	if (sqlite3_open_v2(src_path, &src, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) !=
	    SQLITE_OK) {
		ret = th_err(err, TH_ESTORE, "%s: cannot open %s: %s", what, src_path,
		             src ? sqlite3_errmsg(src) : "out of memory");
		goto out;
	}
	if (sqlite3_open_v2(tmp, &dst, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) !=
	    SQLITE_OK) {
		ret = th_err(err, TH_EIO, "%s: cannot write %s: %s", what, tmp,
		             dst ? sqlite3_errmsg(dst) : "out of memory");
		goto out;
	}
	sqlite3_busy_timeout(src, BACKUP_BUSY_MS);
	sqlite3_busy_timeout(dst, BACKUP_BUSY_MS);
	if ((ret = check_room(what, src, dst_dir, err)) != 0)
		goto out;
	/* the temporary file needs no crash safety of its own: it is synced once,
	 * whole, below, and renamed into place only then */
	if (sqlite3_exec(dst, "PRAGMA journal_mode = MEMORY; PRAGMA synchronous = OFF", NULL, NULL,
	                 NULL) != SQLITE_OK) {
		ret = th_err(err, TH_EIO, "%s: preparing %s: %s", what, tmp, sqlite3_errmsg(dst));
		goto out;
	}
	if ((ret = copy_pages(what, src, dst, &info->pages, err)) != 0 ||
	    (ret = verify_copy(what, dst, &info->schema_version, err)) != 0)
		goto out;
	sqlite3_close(dst);
	dst = NULL;
	if ((ret = sync_path(tmp, false, err)) != 0)
		goto out;
	struct stat st;
	if (stat(tmp, &st) == 0)
		info->bytes = (int64_t)st.st_size;
out:
	sqlite3_close(dst);
	sqlite3_close(src);
	unlink(journal);
	if (ret)
		unlink(tmp);
	return ret;
}

int store_backup(const char *database_url, const char *dest, bool force, store_backup_info *out,
                 th_error *err)
{
	store_backup_info info = {0, 0, 0, 0};
	const char *path = store_sqlite_file(database_url);
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

	char tmp[PATH_MAX + 32];
	int64_t t0 = time_mono_ms();
	if ((ret = copy_to_temp("backup", path, dst_real, dst_dir, tmp, &info, err)) != 0)
		return ret;
	if ((ret = publish(tmp, dst_real, dest, force, err)) != 0 ||
	    (ret = sync_path(dst_dir, true, err)) != 0) {
		unlink(tmp); /* after a successful publish it is gone already */
		return ret;
	}
	info.ms = time_mono_ms() - t0;
	if (out)
		*out = info;
	return 0;
}

/* ---- restore ---------------------------------------------------------------------- */

/* Refuse while another process has the store open (see peer.h). */
static int refuse_if_open(const char *database_url, th_error *err)
{
	store_peer p;
	int ret = store_sqlite_peer(database_url, &p, err);
	if (ret || p.pid == 0)
		return ret;
	char who[96];
	store_peer_describe(&p, who, sizeof who);
	return th_err(err, TH_EUNAVAIL,
	              "restore: %s has the store open: stop serve (e.g. systemctl stop "
	              "trellohook) and every trellohook command using it, then run this again",
	              who);
}

/* The backup must be another file than the store and its own files. */
static int check_source(const char *store, const char *src, const char *given, th_error *err)
{
	const char *sfx[] = {"", "-wal", "-shm", "-journal"};
	for (size_t i = 0; i < TH_ARRAY_LEN(sfx); i++) {
		char name[PATH_MAX + 16];
		if (str_printf(name, sizeof name, "%s%s", store, sfx[i]) && str_eq(name, src))
			return th_err(err, TH_EINVAL, "restore: %s is the store%s%s; name a backup",
			              given, *sfx[i] ? "'s own file " : " itself", sfx[i]);
	}
	struct stat ss, ds;
	if (stat(store, &ds) == 0 && stat(src, &ss) == 0 && ss.st_dev == ds.st_dev &&
	    ss.st_ino == ds.st_ino)
		return th_err(err, TH_EINVAL, "restore: %s is the store itself; name a backup",
		              given);
	return 0;
}

/* The copy @tmp of @given must be a trellohook store this build can open:
 * a schema (version >= 1) no newer than this build's. */
static int check_restorable(const char *given, const char *tmp, int version, th_error *err)
{
	if (version < 1)
		return th_err(err, TH_EINVAL,
		              "restore: %s is an SQLite file but not a trellohook store (no schema "
		              "version); name a file made by trellohook backup",
		              given);
	char url[PATH_MAX + 48];
	int current = 0, latest = 0;
	const char *kind = NULL;
	if (!str_printf(url, sizeof url, "sqlite:%s", tmp))
		return th_err(err, TH_EINVAL, "restore: the path is too long");
	int ret = store_schema_check(url, &current, &latest, &kind, err);
	if (!ret && version > latest)
		ret = th_err(err, TH_EINVAL,
		             "restore: %s is at schema version %d, newer than this trellohook's "
		             "%d: restore it with the version that made it, or upgrade first",
		             given, version, latest);
	return ret;
}

/* Is @src an SQLite file at all? Read before copying, so that the error
 * names the backup rather than "copying the store". */
static int probe_source(const char *src, const char *given, th_error *err)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *q = NULL;
	int rc = sqlite3_open_v2(src, &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_prepare_v2(db, "SELECT count(*) FROM sqlite_master", -1, &q, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(q) == SQLITE_ROW ? SQLITE_OK : sqlite3_errcode(db);
	int ret = rc == SQLITE_OK
	              ? 0
	              : th_err(err, TH_EINVAL,
	                       "restore: %s is not an SQLite store (%s); name a file made by "
	                       "trellohook backup",
	                       given, db ? sqlite3_errmsg(db) : "out of memory");
	sqlite3_finalize(q);
	sqlite3_close(db);
	return ret;
}

/* The restored file gets the owner, group and mode of the store it
 * replaces: a root shell restoring a service's store must not leave it
 * unreadable to the service's user. */
static int match_owner(const char *tmp, const char *store, th_error *err)
{
	struct stat st;
	if (stat(store, &st) != 0)
		return 0; /* no store: the copy's own 0600 */
	if ((st.st_uid != geteuid() || st.st_gid != getegid()) &&
	    chown(tmp, st.st_uid, st.st_gid) != 0)
		return th_err(err, TH_EIO,
		              "restore: cannot give the copy the store's owner (uid %ld, gid %ld): "
		              "%s; run this as that user or as root",
		              (long)st.st_uid, (long)st.st_gid, strerror(errno));
	if (chmod(tmp, st.st_mode & 07777) != 0)
		return th_err(err, TH_EIO, "restore: cannot give the copy the store's mode: %s",
		              strerror(errno));
	return 0;
}

/* Fold the WAL of the store @path into it: the last connection to close
 * checkpoints it and removes the -wal and -shm files. Best effort: the store
 * being replaced may be the damaged one, and then its -wal goes aside with
 * it (set_aside), which keeps the pair as SQLite pairs them, by name. */
static void fold_wal(const char *path)
{
	sqlite3 *db = NULL;
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) ==
	    SQLITE_OK) {
		sqlite3_busy_timeout(db, BACKUP_BUSY_MS);
		(void)sqlite3_exec(db, "PRAGMA wal_checkpoint(TRUNCATE)", NULL, NULL, NULL);
	}
	(void)sqlite3_close(db);
}

/* Keep the store @path that a restore replaces as @aside, PATH.replaced-
 * <UTC time>[-N] (its WAL folded in first when it can be), by a hard link:
 * the store's name goes on naming the old file until the restored one is
 * renamed over it, so no command ever finds it missing (and creates an empty
 * store). A file system without hard links: renamed. The old -shm is
 * dropped (SQLite rebuilds it); a -wal or a rollback -journal that stayed
 * goes with the old file, so it is never replayed into the restored one.
 * @aside is "" when there was no store (an orphan -wal or -journal is then
 * kept under that name all the same). */
static int set_aside(const char *path, char aside[PATH_MAX + 48], th_error *err)
{
	aside[0] = '\0';
	struct stat st;
	bool exists = stat(path, &st) == 0;
	if (!exists && errno != ENOENT)
		return th_err(err, TH_EIO, "restore: cannot examine the store %s: %s", path,
		              strerror(errno));
	if (exists)
		fold_wal(path);
	static const char *const logs[] = {"-wal", "-journal"};
	char stamp[32], log[2][PATH_MAX + 16], shm[PATH_MAX + 8], moved[PATH_MAX + 64];
	time_t now = time(NULL);
	struct tm tm;
	if (!gmtime_r(&now, &tm) || !strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%SZ", &tm))
		return th_err(err, TH_EIO, "restore: cannot read the clock");
	bool has_log[2];
	for (size_t i = 0; i < 2; i++) {
		if (!str_printf(log[i], sizeof log[i], "%s%s", path, logs[i]))
			return th_err(err, TH_EINVAL, "restore: the path is too long");
		has_log[i] = access(log[i], F_OK) == 0;
	}
	if (!str_printf(shm, sizeof shm, "%s-shm", path))
		return th_err(err, TH_EINVAL, "restore: the path is too long");
	if (!exists && !has_log[0] && !has_log[1])
		return unlink(shm) == 0 || errno == ENOENT
		           ? 0
		           : th_err(err, TH_EIO, "restore: cannot remove %s: %s", shm,
		                    strerror(errno));
	struct stat ast;
	for (int n = 1; n <= 100; n++) {
		if (!(n == 1
		          ? str_printf(aside, PATH_MAX + 48, "%s.replaced-%s", path, stamp)
		          : str_printf(aside, PATH_MAX + 48, "%s.replaced-%s-%d", path, stamp, n)))
			return th_err(err, TH_EINVAL, "restore: the path is too long");
		if (lstat(aside, &ast) != 0 && errno == ENOENT)
			break;
		if (n == 100)
			return th_err(err, TH_EEXISTS, "restore: %s exists; try again", aside);
	}
	if (exists && link(path, aside) != 0 &&
	    ((errno != EPERM && errno != EOPNOTSUPP && errno != ENOSYS) ||
	     rename(path, aside) != 0))
		return th_err(err, TH_EIO, "restore: cannot keep the store as %s: %s", aside,
		              strerror(errno));
	for (size_t i = 0; i < 2; i++)
		if (has_log[i] && (!str_printf(moved, sizeof moved, "%s%s", aside, logs[i]) ||
		                   rename(log[i], moved) != 0))
			return th_err(err, TH_EIO, "restore: cannot move %s aside: %s", log[i],
			              strerror(errno));
	if (unlink(shm) != 0 && errno != ENOENT)
		return th_err(err, TH_EIO, "restore: cannot remove %s: %s", shm, strerror(errno));
	if (!exists)
		aside[0] = '\0'; /* only an orphan -wal or -journal was kept */
	return 0;
}

int store_restore(const char *database_url, const char *src, store_restore_info *out, th_error *err)
{
	store_restore_info info;
	memset(&info, 0, sizeof info);
	const char *path = store_sqlite_file(database_url);
	if (!path)
		return th_err(err, TH_ECONFIG,
		              "restore puts back SQLite stores; DATABASE_URL names another kind");
	if (!*path || str_eq(path, ":memory:"))
		return th_err(
		    err, TH_ECONFIG,
		    "restore: DATABASE_URL names no SQLite file (sqlite:PATH) to restore");
	if (!src || !*src)
		return th_err(err, TH_EINVAL, "restore: give the PATH of the backup");
	struct stat st;
	if (stat(src, &st) != 0)
		return th_err(err, errno == ENOENT ? TH_ENOTFOUND : TH_EIO,
		              "restore: cannot use the backup %s: %s", src, strerror(errno));
	if (!S_ISREG(st.st_mode))
		return th_err(err, TH_EINVAL, "restore: %s is not a file; name a backup", src);
	char store_real[PATH_MAX], store_dir[PATH_MAX], src_real[PATH_MAX], src_dir[PATH_MAX];
	int ret = resolve("DATABASE_URL", path, store_real, store_dir, err);
	if (!ret)
		ret = resolve("restore", src, src_real, src_dir, err);
	if (!ret)
		ret = check_source(store_real, src_real, src, err);
	if (!ret)
		ret = refuse_if_open(database_url, err);
	if (!ret)
		ret = probe_source(src_real, src, err);
	if (ret)
		return ret;

	char tmp[PATH_MAX + 32];
	int64_t t0 = time_mono_ms();
	store_backup_info copy = {0, 0, 0, 0};
	ret = copy_to_temp("restore", src_real, store_real, store_dir, tmp, &copy, err);
	if (ret)
		return ret;
	ret = check_restorable(src, tmp, copy.schema_version, err);
	if (!ret)
		ret = match_owner(tmp, store_real, err);
	if (!ret) /* once more, just before the store changes */
		ret = refuse_if_open(database_url, err);
	if (!ret)
		ret = set_aside(store_real, info.replaced, err);
	if (!ret && rename(tmp, store_real) != 0)
		ret = th_err(err, TH_EIO, "restore: cannot put the copy in place of %s: %s%s%s",
		             store_real, strerror(errno),
		             *info.replaced ? "; the store is kept as " : "", info.replaced);
	if (ret) {
		unlink(tmp);
		return ret;
	}
	if ((ret = sync_path(store_dir, true, err)) != 0)
		return ret;
	info.bytes = copy.bytes;
	info.schema_version = copy.schema_version;
	info.ms = time_mono_ms() - t0;
	if (out)
		*out = info;
	return 0;
}

/* Append @s to @b in single quotes for a POSIX shell. */
static int shell_quote(buf *b, const char *s)
{
	int rc = buf_putc(b, '\'');
	for (; !rc && *s; s++)
		rc = *s == '\'' ? buf_puts(b, "'\\''") : buf_putc(b, *s);
	return rc ? rc : buf_putc(b, '\'');
}

/* The PostgreSQL @database_url as libpq takes it (trellohook's own
 * parameters dropped) with its password masked, in *@masked (free()); 0,
 * TH_EINVAL when it is not PostgreSQL, or the failure. */
static int pg_masked_url(const char *database_url, char **masked)
{
	const char *u = database_url ? database_url : "";
	*masked = NULL;
	if (!str_starts(u, "postgresql://") && !str_starts(u, "postgres://"))
		return TH_EINVAL;
	buf url;
	buf_init(&url, 8192);
	int rc = store_libpq_url(&url, u);
	*masked = rc ? NULL : malloc(url.len + 8);
	if (*masked)
		mask_url(url.data, *masked, url.len + 8);
	if (url.data)
		explicit_bzero(url.data, url.len);
	buf_free(&url);
	return *masked ? 0 : rc ? rc : TH_ENOMEM;
}

int store_backup_pg_hint(const char *database_url, const char *dest, buf *out)
{
	char *masked = NULL;
	int rc = pg_masked_url(database_url, &masked);
	if (!rc)
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

int store_restore_pg_hint(const char *database_url, const char *src, buf *out)
{
	char *masked = NULL;
	int rc = pg_masked_url(database_url, &masked);
	if (!rc)
		rc = buf_puts(out, "pg_restore --clean --if-exists --dbname=");
	if (!rc)
		rc = shell_quote(out, masked);
	if (!rc)
		rc = buf_putc(out, ' ');
	if (!rc)
		rc = shell_quote(out, src && *src ? src : "trellohook.dump");
	free(masked);
	return rc;
}
