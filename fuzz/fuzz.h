/* SPDX-License-Identifier: MIT */
/*
 * fuzz.h — helpers shared by the libFuzzer targets in this folder.
 *
 * Inputs are split into pieces at separator bytes, so seeds stay readable
 * text. Every piece is copied into its own heap block of exactly its length
 * (plus a terminating NUL where the code under test wants a C string), so
 * AddressSanitizer sees any read past the end of what the "wire" gave us.
 * Nothing here is thread-shared; each target runs one input at a time.
 */
#ifndef TH_FUZZ_H
#define TH_FUZZ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "http/http.h"

/* A cursor over the fuzzer's input. */
typedef struct fz_in {
	const uint8_t *p;
	size_t n;
} fz_in;

/* The next piece up to (not including) @sep, or the rest when there is no
 * @sep; *@len gets its length. The cursor moves past the separator. Returns
 * NULL when the input is used up. */
const uint8_t *fz_cut(fz_in *in, uint8_t sep, size_t *len);

/* @len bytes of @p as a new NUL-terminated heap string (free() it). Aborts
 * when out of memory: a harness failure, not a finding. */
char *fz_dup(const void *p, size_t len);

/* One byte of the input (0 when used up). */
uint8_t fz_byte(fz_in *in);

/*
 * A request written as text, the way a client sends it:
 *   METHOD SP TARGET LF            TARGET = path [? query]
 *   Name: value LF ...             headers (at most HTTP_MAX_HEADERS kept)
 *   LF                             then the body, every remaining byte
 * The path and query are percent-decoded as libmicrohttpd does before a
 * handler sees them (a decoded NUL ends the C string, as it does there);
 * header values lose surrounding blanks. fz_request_free() releases it.
 */
typedef struct fz_request {
	http_request req;
	char *mem[3 * HTTP_MAX_HEADERS + 2 * HTTP_MAX_ARGS + 4]; /* owned strings */
	size_t nmem;
	char *body; /* owned, body_len + 1 bytes */
} fz_request;

/* Parse @len bytes of @data into @r (zeroed by this call); remote is @remote. */
void fz_request_parse(fz_request *r, const uint8_t *data, size_t len, const char *remote);
/* Replace each occurrence of @from with @to in header values (for placeholders
 * such as a valid session cookie that a fuzzer cannot guess). */
void fz_request_sub_headers(fz_request *r, const char *from, const char *to);
/* The same in the body. */
void fz_request_sub_body(fz_request *r, const char *from, const char *to);
void fz_request_free(fz_request *r);

/* A new string: @s with every @from replaced by @to (free() it). */
char *fz_replace(const char *s, size_t len, const char *from, const char *to, size_t *outlen);

#endif
