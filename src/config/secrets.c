/* SPDX-License-Identifier: MIT */
/* secrets.c — where a secret setting's value comes from: the variable itself,
 * NAME_FILE (a file holding the value), or a systemd credential. See
 * config_secret_get() in config.h. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config/config.h"

/* The secret variables and their systemd credential names. A credential name
 * is a file name in $CREDENTIALS_DIRECTORY, the same one that LoadCredential=
 * looks up in /etc/credstore/, so it carries the program's name. */
static const struct secret {
	const char *env;
	const char *credential;
} secrets[] = {
    {"TRELLO_API_KEY", "trellohook.trello_api_key"},
    {"TRELLO_API_SECRET", "trellohook.trello_api_secret"},
    {"TRELLOHOOK_SECRET_KEY", "trellohook.secret_key"},
    {"DATABASE_URL", "trellohook.database_url"},
};

const char *config_secret_credential(const char *env)
{
	for (size_t i = 0; i < TH_ARRAY_LEN(secrets); i++)
		if (str_eq(secrets[i].env, env))
			return secrets[i].credential;
	return NULL;
}

/* Read the secret file @path into @out (@outsz bytes, NUL-terminated).
 * @what names the file's origin for messages ("TRELLO_API_SECRET_FILE");
 * @check_mode refuses a file that group or others may read. One trailing
 * newline ("\n" or "\r\n") is dropped. Every message says what to do. */
static int read_secret_file(const char *what, const char *path, bool check_mode, char *out,
                            size_t outsz, th_error *err)
{
	/* O_NONBLOCK: a FIFO put there by mistake must not hang the start-up */
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0) {
		int e = errno;
		return th_err(err, TH_ECONFIG, "%s: cannot read %s: %s; %s", what, path,
		              strerror(e),
		              e == ENOENT ? "check the path"
		                          : "make it readable by the user trellohook runs as");
	}
	int rc = 0;
	struct stat st;
	if (fstat(fd, &st) != 0) {
		rc = th_err(err, TH_ECONFIG, "%s: cannot read %s: %s", what, path, strerror(errno));
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		rc = th_err(err, TH_ECONFIG,
		            "%s: %s is not a regular file; point it at a file that "
		            "holds only the value",
		            what, path);
		goto out;
	}
	if (check_mode && (st.st_mode & (S_IRGRP | S_IROTH | S_IWGRP | S_IWOTH))) {
		rc = th_err(err, TH_ECONFIG,
		            "%s: %s is readable or writable by group or others (mode %04o); "
		            "run chmod 600 %s",
		            what, path, (unsigned)(st.st_mode & 07777), path);
		goto out;
	}
	/* read one byte more than fits, to tell "too big" from "just fits" */
	size_t n = 0;
	for (;;) {
		ssize_t got = read(fd, out + n, outsz - n);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0) {
			rc = th_err(err, TH_ECONFIG, "%s: cannot read %s: %s", what, path,
			            strerror(errno));
			goto out;
		}
		if (got == 0)
			break;
		n += (size_t)got;
		if (n == outsz) {
			rc = th_err(err, TH_ECONFIG,
			            "%s: %s is larger than %zu bytes; it must hold only the value",
			            what, path, outsz - 1);
			goto out;
		}
	}
	if (n && out[n - 1] == '\n') {
		n--;
		if (n && out[n - 1] == '\r') /* written on Windows */
			n--;
	}
	out[n] = '\0';
	if (!n) {
		rc =
		    th_err(err, TH_ECONFIG, "%s: %s is empty; write the value into it", what, path);
		goto out;
	}
	/* no echo of the content in these messages: it is a secret */
	if (memchr(out, '\0', n)) {
		rc = th_err(err, TH_ECONFIG,
		            "%s: %s contains a NUL byte; it must hold only the value", what, path);
		goto out;
	}
	if (!str_utf8_valid(out, n)) {
		rc = th_err(err, TH_ECONFIG,
		            "%s: %s is not UTF-8 text; it must hold only the value", what, path);
		goto out;
	}
out:
	if (rc)
		explicit_bzero(out, outsz);
	close(fd);
	return rc;
}

int config_secret_get(const char *env_name, config_env_fn env, char *fbuf, size_t fbufsz,
                      const char **value, char *origin, size_t originsz, th_error *err)
{
	char file_var[64];
	*value = NULL;
	if (origin && originsz)
		origin[0] = '\0';
	const char *cred = config_secret_credential(env_name);
	if (!cred || !str_printf(file_var, sizeof file_var, "%s_FILE", env_name))
		return th_err(err, TH_EINVAL, "%s is not a secret setting", env_name);
	const char *direct = env(env_name), *file = env(file_var);
	/* an empty variable counts as unset, as everywhere in the configuration */
	bool has_direct = direct && *direct, has_file = file && *file;
	if (has_direct && has_file)
		return th_err(err, TH_ECONFIG, "%s and %s are both set; set only one of them",
		              env_name, file_var);
	if (has_direct) {
		*value = direct;
		return 1;
	}
	if (has_file) {
		int rc = read_secret_file(file_var, file, true, fbuf, fbufsz, err);
		if (rc)
			return rc;
		if (origin && originsz)
			str_printf(origin, originsz, "%s=%s", file_var, file);
		*value = fbuf;
		return 1;
	}
	/* Under systemd (LoadCredential=) the service manager owns the directory
	 * and makes it readable by this service only; it may grant that read
	 * through an ACL, whose mask shows up as group bits, so the mode is not
	 * checked here. A credential that is absent is simply not configured. */
	const char *dir = env("CREDENTIALS_DIRECTORY");
	if (!dir || !*dir)
		return 0;
	char path[4096];
	if (!str_printf(path, sizeof path, "%s/%s", dir, cred))
		return th_err(err, TH_ECONFIG, "CREDENTIALS_DIRECTORY is too long");
	if (access(path, F_OK) != 0 && errno == ENOENT)
		return 0;
	char what[128];
	str_printf(what, sizeof what, "credential %s", cred);
	int rc = read_secret_file(what, path, false, fbuf, fbufsz, err);
	if (rc)
		return rc;
	if (origin && originsz)
		str_printf(origin, originsz, "%s", what);
	*value = fbuf;
	return 1;
}

int config_secret_help(buf *out)
{
	int rc = buf_puts(out, "Secrets: each of ");
	for (size_t i = 0; !rc && i < TH_ARRAY_LEN(secrets); i++)
		rc = buf_printf(out, "%s%s", i ? ", " : "", secrets[i].env);
	if (!rc)
		rc = buf_puts(
		    out,
		    "\n"
		    "  can also be read from NAME_FILE=PATH (one trailing newline dropped; the\n"
		    "  file must not be open to group or others: chmod 600), or, when neither\n"
		    "  NAME nor NAME_FILE is set, from systemd's $CREDENTIALS_DIRECTORY:\n");
	for (size_t i = 0; !rc && i < TH_ARRAY_LEN(secrets); i++)
		rc = buf_printf(out, "  %-31s credential %s\n", secrets[i].env,
		                secrets[i].credential);
	return rc;
}
