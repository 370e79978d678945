/* SPDX-License-Identifier: MIT */
/*
 * fuzz_admin — the admin's decoding of what a browser sends
 * (server/admin_html.c): the x-www-form-urlencoded body, the Cookie
 * headers, path ids, and the percent decoder they use (util/str.c), plus
 * the escaping helpers that put decoded text back into a page.
 *
 * Input: CONTENT_TYPE \n COOKIE_HEADER \n COOKIE_HEADER \n BODY.
 * Checks: decoded fields are valid UTF-8 without NUL and fit in the body's
 * length; a cookie value fits its buffer; escaping leaves no raw < > " '.
 */
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "server/admin.h"
#include "util/util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_escaped(const char *s)
{
	buf b;
	buf_init(&b, (size_t)1 << 20);
	if (admin_esc(&b, s) == 0 && b.data && strpbrk(b.data, "<>\"'"))
		abort();
	buf_free(&b);
	buf_init(&b, (size_t)1 << 20);
	if (admin_urlenc(&b, s) == 0 && b.data)
		for (const char *p = b.data; *p; p++)
			if (!strchr(
			        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.~%",
			        *p))
				abort(); /* only unreserved characters and escapes */
	buf_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fz_in in = {data, size};
	size_t l1, l2, l3;
	const uint8_t *ct = fz_cut(&in, '\n', &l1);
	const uint8_t *c1 = fz_cut(&in, '\n', &l2);
	const uint8_t *c2 = fz_cut(&in, '\n', &l3);
	http_request req;
	memset(&req, 0, sizeof req);
	req.method = "POST";
	req.path = "/admin/login";
	req.remote = "192.0.2.1";
	char *cts = fz_dup(ct ? ct : data, ct ? l1 : 0);
	char *ck1 = fz_dup(c1 ? c1 : data, c1 ? l2 : 0);
	char *ck2 = fz_dup(c2 ? c2 : data, c2 ? l3 : 0);
	req.headers[req.nheaders++] = (http_pair){"Content-Type", cts};
	req.headers[req.nheaders++] = (http_pair){"Cookie", ck1};
	req.headers[req.nheaders++] = (http_pair){"cookie", ck2};
	size_t blen = in.p ? in.n : 0;
	char *body = fz_dup(in.p ? in.p : data, blen);
	req.body = body;
	req.body_len = blen;

	admin_req r;
	memset(&r, 0, sizeof r);
	r.req = &req;
	if (admin_form_parse(&r) == 0) {
		if (r.nform > ADMIN_MAX_FIELDS)
			abort();
		for (size_t i = 0; i < r.nform; i++) {
			const char *k = r.form[i].name, *v = r.form[i].value;
			if (strlen(k) > blen || strlen(v) > blen || !str_utf8_valid(k, strlen(k)) ||
			    !str_utf8_valid(v, strlen(v)))
				abort();
			if (admin_field(&r, k) == NULL)
				abort();
			check_escaped(v);
		}
	}
	admin_req_clear(&r);

	static const char *const names[] = {ADMIN_SESSION_COOKIE, ADMIN_LOGIN_COOKIE, "a", ""};
	for (size_t i = 0; i < TH_ARRAY_LEN(names); i++) {
		char out[64];
		memset(out, 0x55, sizeof out);
		if (admin_cookie(&req, names[i], out, sizeof out) && strlen(out) >= sizeof out)
			abort();
		char *heap = malloc(8);
		if (heap && admin_cookie(&req, names[i], heap, 8) && strlen(heap) >= 8)
			abort();
		free(heap);
	}

	/* the body's first line as a path id, and through the decoder */
	size_t idl = strcspn(body, "\n");
	(void)admin_path_id_ok(body, idl);
	char *dec = malloc(blen + 1);
	if (dec) {
		long n = str_url_decode(body, blen, true, dec);
		if (n > (long)blen || (n >= 0 && memchr(dec, '\0', (size_t)n)))
			abort();
		n = str_url_decode(body, blen, false, dec);
		if (n > (long)blen)
			abort();
		free(dec);
	}
	char fp[17];
	admin_token_fp(body, fp);
	check_escaped(body);

	free(cts);
	free(ck1);
	free(ck2);
	free(body);
	return 0;
}
