/* SPDX-License-Identifier: MIT */
/* fuzz_common.c — see fuzz.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "util/util.h"

const uint8_t *fz_cut(fz_in *in, uint8_t sep, size_t *len)
{
	if (!in->p) {
		*len = 0;
		return NULL;
	}
	const uint8_t *start = in->p;
	const uint8_t *hit = memchr(in->p, sep, in->n);
	if (hit) {
		*len = (size_t)(hit - start);
		in->n -= *len + 1;
		in->p = hit + 1;
	} else {
		*len = in->n;
		in->p = NULL;
		in->n = 0;
	}
	return start;
}

char *fz_dup(const void *p, size_t len)
{
	char *s = malloc(len + 1);
	if (!s) {
		fprintf(stderr, "fuzz harness: out of memory\n");
		abort();
	}
	if (len)
		memcpy(s, p, len);
	s[len] = '\0';
	return s;
}

uint8_t fz_byte(fz_in *in)
{
	if (!in->p || in->n == 0)
		return 0;
	uint8_t b = in->p[0];
	in->p++;
	in->n--;
	return b;
}

char *fz_replace(const char *s, size_t len, const char *from, const char *to, size_t *outlen)
{
	size_t fl = strlen(from), tl = strlen(to), count = 0;
	for (size_t i = 0; fl && i + fl <= len; i++)
		if (!memcmp(s + i, from, fl)) {
			count++;
			i += fl - 1;
		}
	size_t n = len + count * tl;
	char *out = malloc(n + 1);
	if (!out)
		abort();
	size_t o = 0;
	for (size_t i = 0; i < len;) {
		if (fl && i + fl <= len && !memcmp(s + i, from, fl)) {
			memcpy(out + o, to, tl);
			o += tl;
			i += fl;
		} else {
			out[o++] = s[i++];
		}
	}
	out[o] = '\0';
	if (outlen)
		*outlen = o;
	return out;
}

static char *keep(fz_request *r, char *s)
{
	if (r->nmem < TH_ARRAY_LEN(r->mem))
		r->mem[r->nmem++] = s;
	else
		abort(); /* the caps below keep us under the array */
	return s;
}

/* Percent-decode like libmicrohttpd's unescaping: a malformed escape is kept
 * as it is; '+' stays '+' in paths and means a space in query values. */
static char *decode(fz_request *r, const uint8_t *p, size_t n, bool plus)
{
	char *out = keep(r, fz_dup(p, n));
	size_t o = 0;
	for (size_t i = 0; i < n; i++) {
		int hi, lo;
		if (p[i] == '%' && i + 2 < n && (hi = str_hex_digit((char)p[i + 1])) >= 0 &&
		    (lo = str_hex_digit((char)p[i + 2])) >= 0) {
			out[o++] = (char)(hi * 16 + lo);
			i += 2;
		} else if (plus && p[i] == '+') {
			out[o++] = ' ';
		} else {
			out[o++] = (char)p[i];
		}
	}
	out[o] = '\0';
	return out;
}

static size_t trim(const uint8_t **p, size_t n)
{
	while (n && (**p == ' ' || **p == '\t')) {
		(*p)++;
		n--;
	}
	while (n && ((*p)[n - 1] == ' ' || (*p)[n - 1] == '\t' || (*p)[n - 1] == '\r'))
		n--;
	return n;
}

void fz_request_parse(fz_request *r, const uint8_t *data, size_t len, const char *remote)
{
	memset(r, 0, sizeof *r);
	fz_in in = {data, len};
	size_t n;
	const uint8_t *line = fz_cut(&in, '\n', &n);
	n = line ? trim(&line, n) : 0;
	/* the request line */
	const uint8_t *sp = line ? memchr(line, ' ', n) : NULL;
	size_t ml = sp ? (size_t)(sp - line) : n;
	r->req.method = keep(r, fz_dup(line ? line : (const uint8_t *)"", ml));
	const uint8_t *target = sp ? sp + 1 : (const uint8_t *)"/";
	size_t tl = sp ? n - ml - 1 : 1;
	const uint8_t *q = memchr(target, '?', tl);
	r->req.path = decode(r, target, q ? (size_t)(q - target) : tl, false);
	if (q) {
		fz_in qs = {q + 1, tl - (size_t)(q + 1 - target)};
		size_t al;
		const uint8_t *a;
		while ((a = fz_cut(&qs, '&', &al)) && r->req.nargs < HTTP_MAX_ARGS) {
			if (!al)
				continue;
			const uint8_t *eq = memchr(a, '=', al);
			size_t kl = eq ? (size_t)(eq - a) : al;
			r->req.args[r->req.nargs].name = decode(r, a, kl, true);
			r->req.args[r->req.nargs].value =
			    eq ? decode(r, eq + 1, al - kl - 1, true) : keep(r, fz_dup("", 0));
			r->req.nargs++;
		}
	}
	/* headers up to an empty line */
	while ((line = fz_cut(&in, '\n', &n)) != NULL) {
		if (n && line[n - 1] == '\r')
			n--;
		if (n == 0)
			break;
		if (r->req.nheaders >= HTTP_MAX_HEADERS)
			continue;
		const uint8_t *colon = memchr(line, ':', n);
		if (!colon)
			continue; /* MHD refuses such a line; nothing reaches a handler */
		size_t kl = (size_t)(colon - line);
		const uint8_t *v = colon + 1;
		size_t vl = trim(&v, n - kl - 1);
		r->req.headers[r->req.nheaders].name = keep(r, fz_dup(line, kl));
		r->req.headers[r->req.nheaders].value = keep(r, fz_dup(v, vl));
		r->req.nheaders++;
	}
	r->body = fz_dup(in.p ? in.p : (const uint8_t *)"", in.p ? in.n : 0);
	r->req.body = r->body;
	r->req.body_len = in.p ? in.n : 0;
	r->req.remote = remote;
	str_copy(r->req.request_id, sizeof r->req.request_id, "fuzz-1");
}

void fz_request_sub_headers(fz_request *r, const char *from, const char *to)
{
	for (size_t i = 0; i < r->req.nheaders; i++) {
		const char *v = r->req.headers[i].value;
		if (!strstr(v, from))
			continue;
		char *nv = fz_replace(v, strlen(v), from, to, NULL);
		if (r->nmem < TH_ARRAY_LEN(r->mem))
			r->req.headers[i].value = keep(r, nv);
		else
			free(nv);
	}
}

void fz_request_sub_body(fz_request *r, const char *from, const char *to)
{
	size_t n;
	char *nb = fz_replace(r->body, r->req.body_len, from, to, &n);
	free(r->body);
	r->body = nb;
	r->req.body = nb;
	r->req.body_len = n;
}

void fz_request_free(fz_request *r)
{
	for (size_t i = 0; i < r->nmem; i++)
		free(r->mem[i]);
	free(r->body);
	memset(r, 0, sizeof *r);
}
