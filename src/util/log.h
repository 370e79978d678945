/* SPDX-License-Identifier: MIT */
/*
 * log — leveled logging to stderr as text or JSON lines.
 *
 * The module owns its state (level, format, a list of secrets to redact) and
 * a per-thread request id that the HTTP server sets for the request it is
 * working on, so every line written while handling it carries the id.
 * Callers must still mask what they print (mask_secret()); the redaction list
 * is a second line of defence for configured secrets (API secret, keys,
 * database passwords). Thread-safe.
 */
#ifndef TH_LOG_H
#define TH_LOG_H

#include <stdbool.h>

#include "util/util.h"

enum log_level { LOG_DEBUG = 0, LOG_INFO, LOG_WARN, LOG_ERROR };
enum log_format { LOG_TEXT = 0, LOG_JSON };

void log_setup(enum log_level level, enum log_format format);
bool log_enabled(enum log_level level);
int log_level_parse(const char *s, enum log_level *out);
int log_format_parse(const char *s, enum log_format *out);
/* Never print @secret (and anything containing it) in full. Copies it; at most
 * 16 secrets, shorter than 8 characters are ignored. */
void log_add_secret(const char *secret);
/* Forget every registered secret (for tests and app teardown). */
void log_clear_secrets(void);
/* Write lines to the file @path (appended, created 0640) instead of stderr.
 * TH_EIO naming the file when it cannot be opened. Thread-safe. */
int log_open_file(const char *path, th_error *err);
/* Log rotation: open the file of log_open_file() again (a rotated file was
 * renamed away; lines then go to a new file at the same path). *@reopened
 * says whether there was a file (false: logging to stderr, nothing to do).
 * Writers on other threads are never interrupted: the new file replaces the
 * old one behind the same descriptor. Thread-safe; not async-signal-safe. */
int log_reopen(bool *reopened, th_error *err);
/* The request id for lines written by this thread (NULL clears it). */
void log_set_request_id(const char *id);

void log_write(enum log_level level, const char *component, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define log_debug(comp, ...)                                     \
	do {                                                     \
		if (log_enabled(LOG_DEBUG))                      \
			log_write(LOG_DEBUG, comp, __VA_ARGS__); \
	} while (0)
#define log_info(comp, ...) log_write(LOG_INFO, comp, __VA_ARGS__)
#define log_warn(comp, ...) log_write(LOG_WARN, comp, __VA_ARGS__)
#define log_error(comp, ...) log_write(LOG_ERROR, comp, __VA_ARGS__)

#endif
