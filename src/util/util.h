/* SPDX-License-Identifier: MIT */
/*
 * util — the bottom layer: errors, bounded buffers, strict number parsing,
 * random ids, base64, secret masking, HTML escaping, time. No I/O policy.
 * Logging has its own header (log.h).
 */
#ifndef TH_UTIL_H
#define TH_UTIL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "trellohook.h"

#define TH_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* ---- errors -------------------------------------------------------------- */

/* Fill @err (NULL-safe) with @code and a formatted message; returns @code so a
 * caller can write `return th_err(err, TH_EINVAL, "...")`. */
int th_err(th_error *err, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Prefix an existing message: "context: old message". Keeps the code. */
int th_err_wrap(th_error *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- bounded buffers ----------------------------------------------------- */

/* A growable byte buffer with a hard maximum (like curl's dynbuf): appending
 * past `max` fails with TH_ETOOBIG. Failures are sticky: the first one
 * (too big, out of memory, a bad format) poisons the buffer, every later
 * append returns that same code and adds nothing, buf_status() reports it
 * and buf_detach() refuses to hand the text on. So a builder may append many
 * pieces unchecked and look once at the end: a page or message with a piece
 * missing is never emitted as if it were whole. buf_reset() starts over
 * (empty and healthy). The data is always NUL-terminated (the terminator is
 * not counted in `len`); after a failure it holds what was appended before.
 * Owned by whoever holds the struct; free with buf_free(). Not thread-safe. */
typedef struct buf {
	char *data;
	size_t len;
	size_t cap;
	size_t max;
	int err; /* 0, or the first failure's TH_E* code (sticky until buf_reset) */
} buf;

#define TH_MUST_CHECK __attribute__((warn_unused_result))

#define BUF_MAX_DEFAULT ((size_t)64 << 20)

void buf_init(buf *b, size_t max);
void buf_free(buf *b);
/* Empty the buffer and clear a failure (keeps the allocation). */
void buf_reset(buf *b);
/* Make room for @extra more bytes (plus the terminator) in one allocation,
 * e.g. when the final size is known; TH_ETOOBIG past the maximum (which
 * poisons the buffer, like a failed append). */
TH_MUST_CHECK int buf_reserve(buf *b, size_t extra);
/* 0 when every append so far succeeded, else the first failure's code. */
TH_MUST_CHECK int buf_status(const buf *b);
int buf_append(buf *b, const void *data, size_t len);
int buf_puts(buf *b, const char *s);
int buf_putc(buf *b, char c);
int buf_printf(buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int buf_vprintf(buf *b, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
/* Hand the data to the caller (free() it); the buffer becomes empty. Never NULL
 * on success: an empty buffer yields "". Returns NULL when an append failed
 * (the buffer keeps its data: buf_free() it) or when out of memory. */
TH_MUST_CHECK char *buf_detach(buf *b, size_t *len);

/* ---- growing arrays (buf.c) ----------------------------------------------- */

/* Room for item @n of an array @arr of @elem-byte items that has room for
 * *@cap: @arr itself while n < *cap, else @arr reallocated to twice the room
 * (@first items the first time) with *@cap updated. The new room is not
 * zeroed. Returns NULL, leaving @arr and *@cap as they were, when out of
 * memory or when the size would overflow. The caller stores the result. */
TH_MUST_CHECK void *mem_grow(void *arr, size_t *cap, size_t n, size_t elem, size_t first);

/* ---- strings ------------------------------------------------------------- */

/* Copy @src into @dst of @size bytes, always terminating. Returns false when
 * @src did not fit (the copy is then truncated). */
bool str_copy(char *dst, size_t size, const char *src);
/* Overwrite the string @s with zeros, then free it: for tokens, secrets and
 * passwords, so they do not stay in freed memory. NULL-safe. */
void str_free_secret(char *s);
/* free() each of @n pointers (NULLs allowed). Clear functions use it through
 * TH_FREE_ALL(x->a, x->b, ...) for their plain heap fields, then zero the
 * struct; secrets still go through str_free_secret(). */
void mem_free_all(void *const *ptrs, size_t n);
#define TH_FREE_ALL(...) \
	mem_free_all((void *[]){__VA_ARGS__}, sizeof((void *[]){__VA_ARGS__}) / sizeof(void *))
/* snprintf that reports truncation as false. */
bool str_printf(char *dst, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
bool str_eq(const char *a, const char *b); /* NULL-safe equality */
bool str_starts(const char *s, const char *prefix);
bool str_ends(const char *s, const char *suffix);
bool str_case_eq(const char *a, const char *b); /* ASCII case-insensitive */
char *str_dup(const char *s);                   /* NULL-safe strdup */
char *str_ndup(const char *s, size_t n);
/* Length (1 to 4) of the valid UTF-8 sequence that starts @s, which has
 * @avail readable bytes; 0 when none starts there (a stray byte, an overlong
 * form, a surrogate, above U+10FFFF, or cut short). ASCII, NUL included, is 1. */
size_t str_utf8_seq(const char *s, size_t avail);
/* True when @s is @len bytes of valid UTF-8 (str_utf8_seq() all the way). */
bool str_utf8_valid(const char *s, size_t len);
bool str_is_hex(const char *s, size_t len);
/* True when all @len bytes of @s are of base64url's alphabet [A-Za-z0-9_-]
 * (ids, cookies and tokens that go into URLs and HTML attributes). */
bool str_is_b64url(const char *s, size_t len);
/* The value of hex digit @c (0-9, a-f, A-F), or -1. */
int str_hex_digit(char c);
/* Percent-decode @n bytes of @in into @out, which has room for n + 1 and is
 * NUL-terminated; with @plus, '+' means a space (form encoding). Strict:
 * returns the decoded length, or -1 for a malformed escape ("%4", "%zz") or an
 * escape that decodes to a NUL byte. */
long str_url_decode(const char *in, size_t n, bool plus, char *out);
/* Trello ids are 24 lowercase or uppercase hex digits. */
bool str_is_trello_id(const char *s);
/* Trello user tokens: 64 hex (older) or "ATTA" + 72 more of [0-9a-fA-F]. */
bool str_is_trello_token(const char *s);

/* ---- numbers -------------------------------------------------------------- */

/* Strict decimal integer in [min, max]: no sign unless min < 0 allows '-',
 * no '+', no spaces, no trailing garbage, no overflow. */
int num_parse_i64(const char *s, int64_t min, int64_t max, int64_t *out);
/* A duration such as "10s", "1m", "2h", "1d", "250ms", "1.5s" into milliseconds. */
int num_parse_duration_ms(const char *s, int64_t *out_ms);
/* Seconds with optional decimals ("0.2", "30") into milliseconds. */
int num_parse_seconds_ms(const char *s, int64_t *out_ms);

/* ---- listen addresses (addr.c) -------------------------------------------- */

/* Parse "HOST:PORT" / "[V6]:PORT" into parts: @host (@hostsz bytes) gets the
 * address without brackets (a hostname of [A-Za-z0-9.-] or an IPv6 literal),
 * @port the strict decimal port (0 allowed: pick a free one). Returns
 * TH_EINVAL for anything else. Pure; thread-safe. */
int net_parse_listen(const char *listen, char *host, size_t hostsz, uint16_t *port);

/* ---- randomness and ids --------------------------------------------------- */

/* Cryptographically random bytes (OpenSSL RAND_bytes). */
int rand_fill(void *out, size_t len);
/* An opaque, URL-safe id with ~120 random bits: 20 characters [A-Za-z0-9_-],
 * the first a letter or digit (so it never reads as a command-line flag). */
#define ID_LEN 20
int rand_id(char out[ID_LEN + 1]);
/* The same shape, but the first 8 characters are @now_ms in base 62 (0-9A-Za-z,
 * which sorts like the numbers), followed by ~72 random bits. Ids made later
 * sort later, so a B-tree index on them grows at its right edge: one index
 * page per commit instead of one random page per row. For rows whose ids are
 * shown but never secret (events, deliveries), not for webhook ids. */
int rand_id_timed(char out[ID_LEN + 1], int64_t now_ms);
/* @n such ids into @out at once, from one draw of random bytes per 64 ids
 * (a draw costs about as much for one id as for 64). */
int rand_ids_timed(char (*out)[ID_LEN + 1], size_t n, int64_t now_ms);
/* True when @s has the shape of an id made by rand_id() (or a longer one). */
bool id_is_wellformed(const char *s);

/* ---- base64 -------------------------------------------------------------- */

/* Standard alphabet with padding. @out must hold b64_encoded_len(len) bytes
 * (including the terminator). */
size_t b64_encoded_len(size_t len);
void b64_encode(const void *data, size_t len, char *out);
/* Decode standard base64 (padding required). Returns the decoded length, or
 * -1 when the input is malformed or does not fit @outsz. */
long b64_decode(const char *in, size_t inlen, unsigned char *out, size_t outsz);

/* ---- masking secrets in anything printed ---------------------------------- */

/* "ATTAabcd…1a2B"-style: keep the first 4 and last 4 characters of a secret of
 * 12 or more characters, otherwise "****". Writes at most @size bytes. */
void mask_secret(const char *secret, char *out, size_t size);
/* A URL with its password replaced: postgresql://u:****@h/db. */
void mask_url(const char *url, char *out, size_t size);

/* ---- HTML ---------------------------------------------------------------- */

/* Append @s HTML-escaped (& < > " ' ) to @b. */
int html_escape(buf *b, const char *s);

/* ---- time ---------------------------------------------------------------- */

int64_t time_now_ms(void);  /* wall clock, ms since the epoch */
int64_t time_mono_ms(void); /* monotonic clock, ms */
int64_t time_mono_us(void); /* monotonic clock, µs (for durations) */
/* "2026-11-20T09:15:02.117Z" (always UTC, millisecond precision). */
void time_format_iso(int64_t ms, char out[32]);
/* Parse an ISO 8601 UTC timestamp ("...Z", optional fraction). */
int time_parse_iso(const char *s, int64_t *out_ms);

#endif
