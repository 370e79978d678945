/* SPDX-License-Identifier: MIT */
/* log.c — see log.h. One line per call, written with a single write(2). */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/json_text.h"
#include "util/log.h"
#include "util/util.h"

#define MAX_SECRETS 16
#define MAX_LINE 8192

static struct {
	pthread_mutex_t lock; /* guards secrets[], file[] and opening the file */
	/* level and format: atomics, as log_setup() may run (a second app) while
	 * other threads log; ThreadSanitizer saw that race */
	atomic_int level;  /* enum log_level */
	atomic_int format; /* enum log_format */
	char *secrets[MAX_SECRETS];
	size_t nsecrets;
	/* where lines go: stderr, or the descriptor of log_open_file(), whose
	 * number never changes once chosen (log_reopen() dup2()s the new file
	 * onto it), so a thread writing meanwhile never uses a closed number */
	atomic_int fd;
	char file[4096]; /* the path of log_open_file(), "" for stderr */
} logger = {PTHREAD_MUTEX_INITIALIZER, LOG_INFO, LOG_TEXT, {0}, 0, STDERR_FILENO, ""};

static _Thread_local char request_id[40];

static const char *level_names[] = {"debug", "info", "warn", "error"};

void log_setup(enum log_level level, enum log_format format)
{
	atomic_store_explicit(&logger.level, (int)level, memory_order_relaxed);
	atomic_store_explicit(&logger.format, (int)format, memory_order_relaxed);
}

/* Open @path for appending (created 0640) and put it behind logger.fd. Called
 * with logger.lock held. */
static int open_locked(const char *path, th_error *err)
{
	int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
	if (fd < 0)
		return th_err(err, TH_EIO, "TRELLOHOOK_LOG_FILE: cannot open %s: %s", path,
		              strerror(errno));
	int cur = atomic_load(&logger.fd);
	if (cur == STDERR_FILENO) {
		atomic_store(&logger.fd, fd); /* from now on this number is ours */
		return 0;
	}
	int rc = dup2(fd, cur) < 0 ? th_err(err, TH_EIO, "TRELLOHOOK_LOG_FILE: reopening %s: %s",
	                                    path, strerror(errno))
	                           : 0;
	close(fd);
	return rc;
}

int log_open_file(const char *path, th_error *err)
{
	pthread_mutex_lock(&logger.lock);
	int rc = str_copy(logger.file, sizeof logger.file, path)
	             ? open_locked(path, err)
	             : th_err(err, TH_ECONFIG, "TRELLOHOOK_LOG_FILE: the path is too long");
	if (rc)
		logger.file[0] = '\0';
	pthread_mutex_unlock(&logger.lock);
	return rc;
}

int log_reopen(bool *reopened, th_error *err)
{
	pthread_mutex_lock(&logger.lock);
	*reopened = logger.file[0] != '\0';
	int rc = *reopened ? open_locked(logger.file, err) : 0;
	pthread_mutex_unlock(&logger.lock);
	return rc;
}

bool log_enabled(enum log_level level)
{
	return (int)level >= atomic_load_explicit(&logger.level, memory_order_relaxed);
}

int log_level_parse(const char *s, enum log_level *out)
{
	for (size_t i = 0; i < TH_ARRAY_LEN(level_names); i++)
		if (str_eq(s, level_names[i])) {
			*out = (enum log_level)i;
			return 0;
		}
	return TH_EINVAL;
}

int log_format_parse(const char *s, enum log_format *out)
{
	if (str_eq(s, "text"))
		*out = LOG_TEXT;
	else if (str_eq(s, "json"))
		*out = LOG_JSON;
	else
		return TH_EINVAL;
	return 0;
}

void log_add_secret(const char *secret)
{
	if (!secret || strlen(secret) < 8)
		return;
	pthread_mutex_lock(&logger.lock);
	bool known = false;
	for (size_t i = 0; i < logger.nsecrets; i++)
		known |= strcmp(logger.secrets[i], secret) == 0;
	if (!known && logger.nsecrets < MAX_SECRETS) {
		char *copy = strdup(secret);
		if (copy)
			logger.secrets[logger.nsecrets++] = copy;
	}
	pthread_mutex_unlock(&logger.lock);
}

void log_clear_secrets(void)
{
	pthread_mutex_lock(&logger.lock);
	for (size_t i = 0; i < logger.nsecrets; i++)
		free(logger.secrets[i]);
	logger.nsecrets = 0;
	pthread_mutex_unlock(&logger.lock);
}

void log_set_request_id(const char *id)
{
	str_copy(request_id, sizeof request_id, id ? id : "");
}

/* Replace every registered secret in @msg (in place) with its masked form. */
static void redact(char *msg)
{
	pthread_mutex_lock(&logger.lock);
	for (size_t i = 0; i < logger.nsecrets; i++) {
		const char *secret = logger.secrets[i];
		size_t slen = strlen(secret);
		char masked[32];
		mask_secret(secret, masked, sizeof masked);
		size_t mlen = strlen(masked);
		char *hit;
		while ((hit = strstr(msg, secret)) != NULL) {
			/* masked is never longer than the secret (>= 12 chars) or "****" */
			size_t tail = strlen(hit + slen);
			if (mlen > slen) {
				memset(hit, '*', slen);
				continue;
			}
			memcpy(hit, masked, mlen);
			memmove(hit + mlen, hit + slen, tail + 1);
		}
	}
	pthread_mutex_unlock(&logger.lock);
}

/* Append @s to @b for a text line: control bytes (C0, DEL, and the C1 range
 * U+0080-U+009F) and bytes that are not UTF-8 become visible escapes (\n,
 * \r, \t, \xNN, \u0085), so nothing logged (a path with %0d%0a, a header
 * with ESC) can start a forged line or drive the terminal reading the log. */
static int text_escape(buf *b, const char *s)
{
	int rc = 0;
	size_t len = strlen(s);
	for (size_t i = 0; !rc && i < len;) {
		unsigned char c = (unsigned char)s[i];
		size_t n = c < 0x80 ? 1 : str_utf8_seq(s + i, len - i);
		if (c == '\n' || c == '\r' || c == '\t') {
			rc = buf_puts(b, c == '\n' ? "\\n" : c == '\r' ? "\\r" : "\\t");
			i++;
		} else if (c < 0x20 || c == 0x7f || !n) {
			rc = buf_printf(b, "\\x%02x", c);
			i++;
		} else if (n == 2 && c == 0xc2 && (unsigned char)s[i + 1] < 0xa0) {
			rc = buf_printf(b, "\\u%04x", (unsigned char)s[i + 1]);
			i += 2;
		} else {
			rc = buf_append(b, s + i, n);
			i += n;
		}
	}
	return rc;
}

void log_write(enum log_level level, const char *component, const char *fmt, ...)
{
	if ((int)level < atomic_load_explicit(&logger.level, memory_order_relaxed))
		return;
	char msg[MAX_LINE];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	redact(msg);

	char ts[32];
	time_format_iso(time_now_ms(), ts);
	buf line;
	buf_init(&line, MAX_LINE * 7);
	int rc;
	if (atomic_load_explicit(&logger.format, memory_order_relaxed) == LOG_JSON) {
		rc = buf_printf(&line, "{\"ts\":\"%s\",\"level\":\"%s\",\"component\":", ts,
		                level_names[level]);
		rc = rc ? rc : json_text_quote(&line, component ? component : "");
		if (!rc && request_id[0]) {
			rc = buf_puts(&line, ",\"request_id\":");
			rc = rc ? rc : json_text_quote(&line, request_id);
		}
		rc = rc ? rc : buf_puts(&line, ",\"msg\":");
		rc = rc ? rc : json_text_quote(&line, msg);
		rc = rc ? rc : buf_puts(&line, "}\n");
	} else {
		rc = buf_printf(&line, "%s %-5s ", ts, level_names[level]);
		rc = rc ? rc : text_escape(&line, component ? component : "-");
		if (!rc && request_id[0]) {
			rc = buf_puts(&line, " [");
			rc = rc ? rc : text_escape(&line, request_id);
			rc = rc ? rc : buf_putc(&line, ']');
		}
		rc = rc ? rc : buf_puts(&line, ": ");
		rc = rc ? rc : text_escape(&line, msg);
		rc = rc ? rc : buf_putc(&line, '\n');
	}
	if (!rc) {
		/* one write(2) per line keeps lines from different threads whole */
		ssize_t n = write(atomic_load(&logger.fd), line.data, line.len);
		(void)n;
	}
	buf_free(&line);
}
