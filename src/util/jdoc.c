/* SPDX-License-Identifier: MIT */
/*
 * jdoc.c — the strict one-pass JSON reader (see jdoc.h for the rules).
 *
 * The parser is a loop over three places in the grammar (a value is
 * expected, an object key is expected, a value just ended) with an explicit
 * stack of open containers bounded by max_depth, so hostile nesting never
 * recurses. Each token goes on the tape; a container's `end` is filled when
 * it closes. Object keys also go on a key stack so that, when the object
 * closes, its keys can be checked for duplicates: pairwise for small
 * objects, sorted (O(k log k)) for big ones.
 *
 * The text comes off the wire: every read is bounds-checked against the
 * length, and nothing is assumed about a terminator.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "util/jdoc.h"

/* 0x0101010101010101: a byte value times ONES is that byte in all eight. */
#define ONES ((uint64_t)0x0101010101010101ULL)
/* Objects with at most this many keys are checked for duplicates pairwise. */
#define DUP_PAIRWISE_MAX 16
/* Open containers and pending keys kept on the C stack while parsing. */
#define STACK_INLINE 64
#define KEYS_INLINE 128
/* Heap arena chunks hold at least this much. */
#define CHUNK_MIN 8192

struct jdoc_chunk {
	struct jdoc_chunk *next;
	char data[];
};

/* An open container while parsing. */
struct frame {
	uint32_t node;     /* its token */
	uint32_t key_base; /* objects: where its keys start on the key stack */
};

typedef struct parser {
	jdoc *d;
	const unsigned char *s;
	size_t n;
	const char *what; /* the error, when one was found */
	size_t err_at;    /* byte offset of the error */
	int oom;          /* the error is an allocation failure */
	struct frame *stack;
	int depth, max_depth;
	uint32_t *keys; /* key tokens of the open objects */
	size_t nkeys, keys_cap;
	struct frame inline_stack[STACK_INLINE];
	uint32_t inline_keys[KEYS_INLINE];
} parser;

/* Character classes inside strings: 0 = an ASCII byte that stands for itself. */
enum { C_PLAIN = 0, C_QUOTE, C_BACKSLASH, C_CONTROL, C_HIGH };

static const unsigned char str_class[256] = {
    /* 0x00..0x1F: control characters (NUL included) */
    3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3,
    /* 0x20..0x2F: '"' is 0x22 */
    0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    /* 0x30..0x5B */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    /* 0x5C: backslash */
    2,
    /* 0x5D..0x7F */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0,
    /* 0x80..0xFF: UTF-8 lead, continuation or invalid bytes */
    4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4,
    4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4,
    4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4,
    4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4};

static bool is_ws(unsigned char c)
{
	return c == ' ' || c == '\n' || c == '\r' || c == '\t';
}

static bool is_digit(unsigned char c)
{
	return c >= '0' && c <= '9';
}

/* The 4 hex digits at @s (@avail bytes readable) as a code unit, or -1. */
static long hex4(const unsigned char *s, size_t avail)
{
	if (avail < 4)
		return -1;
	long v = 0;
	for (int i = 0; i < 4; i++) {
		int h = str_hex_digit((char)s[i]);
		if (h < 0)
			return -1;
		v = (v << 4) | h;
	}
	return v;
}

/* ---- the tape ----------------------------------------------------------------- */

static bool fail(parser *ps, const char *what, size_t at)
{
	ps->what = what;
	ps->err_at = at;
	return false;
}

static bool fail_oom(parser *ps, size_t at)
{
	ps->oom = 1;
	return fail(ps, "out of memory", at);
}

/* Double the tape (moving it to the heap the first time). */
static bool __attribute__((noinline)) grow_tape(parser *ps, size_t pos)
{
	jdoc *d = ps->d;
	{
		if (d->cap > UINT32_MAX / 2 / sizeof(jnode))
			return fail_oom(ps, pos);
		uint32_t cap = d->cap * 2;
		jnode *nodes;
		if (d->nodes == d->inline_nodes) {
			nodes = malloc((size_t)cap * sizeof *nodes);
			if (nodes)
				memcpy(nodes, d->nodes, (size_t)d->count * sizeof *nodes);
		} else {
			nodes = realloc(d->nodes, (size_t)cap * sizeof *nodes);
		}
		if (!nodes)
			return fail_oom(ps, pos);
		d->nodes = nodes;
		d->cap = cap;
	}
	return true;
}

/* Append a token; its index in *@idx. */
static inline bool push_node(parser *ps, uint8_t type, size_t pos, uint32_t *idx)
{
	jdoc *d = ps->d;
	if (d->count == d->cap && !grow_tape(ps, pos))
		return false;
	jnode *t = &d->nodes[d->count];
	t->str = NULL;
	t->pos = (uint32_t)pos;
	t->len = 0;
	t->type = type;
	t->flags = 0;
	*idx = d->count++;
	t->end = d->count;
	return true;
}

static bool push_key(parser *ps, uint32_t idx, size_t pos)
{
	if (ps->nkeys == ps->keys_cap) {
		size_t cap = ps->keys_cap * 2;
		uint32_t *k;
		if (ps->keys == ps->inline_keys) {
			k = malloc(cap * sizeof *k);
			if (k)
				memcpy(k, ps->keys, ps->nkeys * sizeof *k);
		} else {
			k = realloc(ps->keys, cap * sizeof *k);
		}
		if (!k)
			return fail_oom(ps, pos);
		ps->keys = k;
		ps->keys_cap = cap;
	}
	ps->keys[ps->nkeys++] = idx;
	return true;
}

/* ---- decoding strings ------------------------------------------------------------- */

/* Reads the decoded bytes of a validated raw string one at a time. */
typedef struct cursor {
	const unsigned char *p, *end;
	unsigned char buf[4];
	unsigned blen, bpos;
} cursor;

/* UTF-8 of code point @cp into @out; its length. */
static unsigned utf8_put(unsigned long cp, unsigned char *out)
{
	if (cp < 0x80) {
		out[0] = (unsigned char)cp;
		return 1;
	}
	if (cp < 0x800) {
		out[0] = (unsigned char)(0xC0 | (cp >> 6));
		out[1] = (unsigned char)(0x80 | (cp & 0x3F));
		return 2;
	}
	if (cp < 0x10000) {
		out[0] = (unsigned char)(0xE0 | (cp >> 12));
		out[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
		out[2] = (unsigned char)(0x80 | (cp & 0x3F));
		return 3;
	}
	out[0] = (unsigned char)(0xF0 | (cp >> 18));
	out[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
	out[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
	out[3] = (unsigned char)(0x80 | (cp & 0x3F));
	return 4;
}

/* Decode the escape at @p (the byte after the backslash; the parser checked
 * it) into @out; returns its length and advances *@pp past the escape. */
static unsigned decode_escape(const unsigned char **pp, const unsigned char *end,
                              unsigned char *out)
{
	const unsigned char *p = *pp;
	unsigned char c = *p++;
	unsigned n = 1;
	switch (c) {
	case 'b': out[0] = '\b'; break;
	case 'f': out[0] = '\f'; break;
	case 'n': out[0] = '\n'; break;
	case 'r': out[0] = '\r'; break;
	case 't': out[0] = '\t'; break;
	case 'u': {
		unsigned long cp = (unsigned long)hex4(p, (size_t)(end - p));
		p += 4;
		if (cp >= 0xD800 && cp <= 0xDBFF) { /* the parser saw the low half follow */
			unsigned long lo = (unsigned long)hex4(p + 2, (size_t)(end - p - 2));
			cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
			p += 6;
		}
		n = utf8_put(cp, out);
		break;
	}
	default: out[0] = c; break; /* " \ / */
	}
	*pp = p;
	return n;
}

static void cursor_init(cursor *c, const jdoc *d, const jnode *n)
{
	c->p = (const unsigned char *)d->text + n->pos;
	c->end = c->p + n->len;
	c->blen = c->bpos = 0;
}

/* The next decoded byte, or -1 at the end. */
static int cursor_next(cursor *c)
{
	if (c->bpos < c->blen)
		return c->buf[c->bpos++];
	if (c->p >= c->end)
		return -1;
	if (*c->p != '\\')
		return *c->p++;
	c->p++;
	c->blen = decode_escape(&c->p, c->end, c->buf);
	c->bpos = 1;
	return c->buf[0];
}

/* Compare the decoded values of strings @a and @b (memcmp order). */
static int str_cmp(const jdoc *d, const jnode *a, const jnode *b)
{
	if (!((a->flags | b->flags) & JDOC_F_ESCAPED)) {
		size_t m = a->len < b->len ? a->len : b->len;
		int r = memcmp(d->text + a->pos, d->text + b->pos, m);
		if (r)
			return r;
		return a->len < b->len ? -1 : a->len > b->len;
	}
	cursor ca, cb;
	cursor_init(&ca, d, a);
	cursor_init(&cb, d, b);
	for (;;) {
		int x = cursor_next(&ca), y = cursor_next(&cb);
		if (x != y)
			return x < y ? -1 : 1;
		if (x < 0)
			return 0;
	}
}

static bool str_equal(const jdoc *d, const jnode *a, const jnode *b)
{
	if (!((a->flags | b->flags) & JDOC_F_ESCAPED))
		return a->len == b->len &&
		       (a->len == 0 || (d->text[a->pos] == d->text[b->pos] &&
		                        memcmp(d->text + a->pos, d->text + b->pos, a->len) == 0));
	return str_cmp(d, a, b) == 0;
}

/* ---- duplicate keys ------------------------------------------------------------------ */

/* Merge sort of key token indices by decoded key (qsort has no context). */
static void sort_keys(const jdoc *d, uint32_t *k, uint32_t *tmp, size_t n)
{
	if (n < 2)
		return;
	size_t h = n / 2;
	sort_keys(d, k, tmp, h);
	sort_keys(d, k + h, tmp, n - h);
	size_t i = 0, j = h, o = 0;
	while (i < h && j < n) {
		if (str_cmp(d, &d->nodes[k[j]], &d->nodes[k[i]]) < 0)
			tmp[o++] = k[j++];
		else
			tmp[o++] = k[i++];
	}
	while (i < h)
		tmp[o++] = k[i++];
	while (j < n)
		tmp[o++] = k[j++];
	memcpy(k, tmp, n * sizeof *k);
}

/* Check the @n keys at @k (token indices of one object) for duplicates. The
 * recursion of sort_keys() is log2(n) deep, whatever the input. */
static bool check_dups(parser *ps, uint32_t *k, size_t n)
{
	const jdoc *d = ps->d;
	if (n <= DUP_PAIRWISE_MAX) {
		for (size_t i = 1; i < n; i++)
			for (size_t j = 0; j < i; j++)
				if (str_equal(d, &d->nodes[k[i]], &d->nodes[k[j]]))
					return fail(ps, "duplicate object key",
					            d->nodes[k[i]].pos - 1);
		return true;
	}
	uint32_t *tmp = malloc(2 * n * sizeof *tmp);
	if (!tmp)
		return fail_oom(ps, d->nodes[k[0]].pos);
	uint32_t *sorted = tmp + n;
	memcpy(sorted, k, n * sizeof *k);
	sort_keys(d, sorted, tmp, n);
	bool ok = true;
	for (size_t i = 1; i < n && ok; i++) {
		const jnode *a = &d->nodes[sorted[i - 1]], *b = &d->nodes[sorted[i]];
		if (str_equal(d, a, b))
			ok = fail(ps, "duplicate object key",
			          (a->pos > b->pos ? a->pos : b->pos) - 1);
	}
	free(tmp);
	return ok;
}

/* ---- scanning tokens ----------------------------------------------------------------- */

/* Scan the string whose opening quote is at *@pp into token @t; on success
 * *@pp is just past the closing quote. */
static bool scan_string(parser *ps, size_t *pp, jnode *t)
{
	const unsigned char *s = ps->s;
	size_t n = ps->n, p = *pp + 1, start = p;
	uint8_t flags = 0;
	for (;;) {
		/* eight bytes at a time while none is a quote, a backslash, a
		 * control character or non-ASCII (SWAR: "has a byte less than"
		 * and "has a zero byte" bit tricks) */
		while (n - p >= 8) {
			uint64_t x;
			memcpy(&x, s + p, 8);
			uint64_t q = x ^ (ONES * '"'), b = x ^ (ONES * '\\');
			uint64_t hit =
			    ((x - ONES * 0x20) & ~x) | ((q - ONES) & ~q) | ((b - ONES) & ~b) | x;
			if (hit & (ONES * 0x80))
				break;
			p += 8;
		}
		while (p < n && str_class[s[p]] == C_PLAIN)
			p++;
		if (p >= n)
			return fail(ps, "unterminated string", n);
		switch (str_class[s[p]]) {
		case C_QUOTE: goto done;
		case C_CONTROL:
			return fail(ps, s[p] ? "control character in string" : "NUL byte in string",
			            p);
		case C_HIGH: {
			size_t k = str_utf8_seq((const char *)s + p, n - p);
			if (!k)
				return fail(ps, "invalid UTF-8 in string", p);
			p += k;
			break;
		}
		default: { /* backslash */
			size_t at = p++;
			flags = JDOC_F_ESCAPED;
			if (p >= n)
				return fail(ps, "unterminated string", n);
			unsigned char c = s[p];
			if (c == '"' || c == '\\' || c == '/' || c == 'b' || c == 'f' || c == 'n' ||
			    c == 'r' || c == 't') {
				p++;
				break;
			}
			if (c != 'u')
				return fail(ps, "invalid escape", at);
			long cp = hex4(s + p + 1, n - p - 1);
			if (cp < 0)
				return fail(ps, "invalid \\u escape", at);
			p += 5;
			if (cp == 0)
				return fail(ps, "\\u0000 is not allowed", at);
			if (cp >= 0xDC00 && cp <= 0xDFFF)
				return fail(ps, "lone low surrogate", at);
			if (cp >= 0xD800 && cp <= 0xDBFF) {
				long lo = -1;
				if (p + 1 < n && s[p] == '\\' && s[p + 1] == 'u')
					lo = hex4(s + p + 2, n - p - 2);
				if (lo < 0xDC00 || lo > 0xDFFF)
					return fail(ps, "high surrogate without a low surrogate",
					            at);
				p += 6;
			}
			break;
		}
		}
	}
done:
	t->pos = (uint32_t)start;
	t->len = (uint32_t)(p - start);
	t->flags = flags;
	*pp = p + 1;
	return true;
}

/* Would strtod() overflow on the @len bytes at @s (a valid JSON number)?
 * jansson refuses those ("real number overflow"); underflow is fine. Only
 * called when the number could be that big. Needs the C locale's '.' (this
 * program never calls setlocale()). */
static bool real_overflows(const unsigned char *s, size_t len, bool *oom)
{
	char small[128];
	char *copy = len < sizeof small ? small : malloc(len + 1);
	if (!copy) {
		*oom = true;
		return false;
	}
	memcpy(copy, s, len);
	copy[len] = '\0';
	errno = 0;
	double v = strtod(copy, NULL);
	bool over = (v == HUGE_VAL || v == -HUGE_VAL) && errno == ERANGE;
	if (copy != small)
		free(copy);
	return over;
}

/* Scan the number at *@pp into token @t. */
static bool scan_number(parser *ps, size_t *pp, jnode *t)
{
	const unsigned char *s = ps->s;
	size_t n = ps->n, start = *pp, p = start;
	bool neg = false, integer = true, expo = false;
	if (s[p] == '-') {
		neg = true;
		p++;
	}
	size_t digits = p;
	if (p < n && s[p] == '0') {
		p++;
		if (p < n && is_digit(s[p]))
			return fail(ps, "leading zero in a number", start);
	} else if (p < n && is_digit(s[p])) {
		while (p < n && is_digit(s[p]))
			p++;
	} else {
		return fail(ps, "invalid token", start);
	}
	size_t ndigits = p - digits;
	if (p < n && s[p] == '.') {
		integer = false;
		p++;
		if (!(p < n && is_digit(s[p])))
			return fail(ps, "digit expected after '.'", p);
		while (p < n && is_digit(s[p]))
			p++;
	}
	if (p < n && (s[p] == 'e' || s[p] == 'E')) {
		integer = false;
		expo = true;
		p++;
		if (p < n && (s[p] == '+' || s[p] == '-'))
			p++;
		if (!(p < n && is_digit(s[p])))
			return fail(ps, "digit expected in the exponent", p);
		while (p < n && is_digit(s[p]))
			p++;
	}
	if (integer) {
		/* int64: at most 19 digits, 9223372036854775807 (…808 negative) */
		static const char max[] = "9223372036854775807";
		static const char min[] = "9223372036854775808";
		if (ndigits > 19 || (ndigits == 19 && memcmp(s + digits, neg ? min : max, 19) > 0))
			return fail(ps, neg ? "too big negative integer" : "too big integer",
			            start);
		t->flags = JDOC_F_INTEGER;
	} else if (expo || ndigits > 300) {
		bool oom = false;
		if (real_overflows(s + start, p - start, &oom))
			return fail(ps, "real number overflow", start);
		if (oom)
			return fail_oom(ps, start);
	}
	t->pos = (uint32_t)start;
	t->len = (uint32_t)(p - start);
	*pp = p;
	return true;
}

/* The literal @word (true, false, null) at *@pp. */
static bool scan_literal(parser *ps, size_t *pp, const char *word, size_t wlen)
{
	size_t p = *pp;
	if (ps->n - p < wlen || memcmp(ps->s + p, word, wlen) != 0)
		return fail(ps, "invalid token", p);
	*pp = p + wlen;
	return true;
}

static size_t skip_ws(const unsigned char *s, size_t n, size_t p)
{
	while (p < n && is_ws(s[p]))
		p++;
	return p;
}

/* Close the innermost container (its closing bracket is next). */
static bool close_container(parser *ps)
{
	struct frame *f = &ps->stack[--ps->depth];
	jdoc *d = ps->d;
	jnode *t = &d->nodes[f->node];
	t->end = d->count;
	if (t->type == JDOC_OBJECT) {
		size_t nk = ps->nkeys - f->key_base;
		t->len = (uint32_t)nk;
		if (nk > 1 && !check_dups(ps, ps->keys + f->key_base, nk))
			return false;
		ps->nkeys = f->key_base;
	}
	return true;
}

/* The grammar loop. Returns true when the whole text is one valid value. */
static bool parse_text(parser *ps)
{
	const unsigned char *s = ps->s;
	size_t n = ps->n, p = 0;
	uint32_t idx;

value: /* a value is expected at p (after whitespace) */
	p = skip_ws(s, n, p);
	if (p >= n)
		return fail(ps, "unexpected end of input", p);
	switch (s[p]) {
	case '{':
	case '[': {
		uint8_t type = s[p] == '{' ? JDOC_OBJECT : JDOC_ARRAY;
		if (ps->depth >= ps->max_depth)
			return fail(ps, "nesting too deep", p);
		if (!push_node(ps, type, p, &idx))
			return false;
		ps->stack[ps->depth].node = idx;
		ps->stack[ps->depth].key_base = (uint32_t)ps->nkeys;
		ps->depth++;
		p = skip_ws(s, n, p + 1);
		if (p < n && s[p] == (type == JDOC_OBJECT ? '}' : ']')) {
			if (!close_container(ps))
				return false;
			p++;
			goto after;
		}
		if (type == JDOC_OBJECT)
			goto key;
		goto value;
	}
	case '"':
		if (!push_node(ps, JDOC_STRING, p, &idx) ||
		    !scan_string(ps, &p, &ps->d->nodes[idx]))
			return false;
		goto after;
	case 't':
		if (!push_node(ps, JDOC_TRUE, p, &idx) || !scan_literal(ps, &p, "true", 4))
			return false;
		goto after;
	case 'f':
		if (!push_node(ps, JDOC_FALSE, p, &idx) || !scan_literal(ps, &p, "false", 5))
			return false;
		goto after;
	case 'n':
		if (!push_node(ps, JDOC_NULL, p, &idx) || !scan_literal(ps, &p, "null", 4))
			return false;
		goto after;
	default:
		if (s[p] == '-' || is_digit(s[p])) {
			if (!push_node(ps, JDOC_NUMBER, p, &idx) ||
			    !scan_number(ps, &p, &ps->d->nodes[idx]))
				return false;
			goto after;
		}
		return fail(ps, s[p] ? "invalid token" : "NUL byte", p);
	}

key: /* an object key is expected at p (whitespace skipped) */
	if (p >= n)
		return fail(ps, "unexpected end of input", p);
	if (s[p] != '"')
		return fail(ps, "string or '}' expected", p);
	if (!push_node(ps, JDOC_STRING, p, &idx) || !push_key(ps, idx, p) ||
	    !scan_string(ps, &p, &ps->d->nodes[idx]))
		return false;
	p = skip_ws(s, n, p);
	if (p >= n || s[p] != ':')
		return fail(ps, "':' expected", p);
	p++;
	goto value;

after: /* a value ended just before p */
	p = skip_ws(s, n, p);
	if (ps->depth == 0) {
		if (p < n)
			return fail(ps, s[p] ? "end of input expected" : "NUL byte", p);
		return true;
	}
	if (p >= n)
		return fail(ps, "unexpected end of input", p);
	if (ps->d->nodes[ps->stack[ps->depth - 1].node].type == JDOC_OBJECT) {
		if (s[p] == ',') {
			p = skip_ws(s, n, p + 1);
			goto key;
		}
		if (s[p] != '}')
			return fail(ps, "',' or '}' expected", p);
	} else {
		if (s[p] == ',') {
			p++;
			goto value;
		}
		if (s[p] != ']')
			return fail(ps, "',' or ']' expected", p);
	}
	if (!close_container(ps))
		return false;
	p++;
	goto after;
}

/* See jdoc.h. */
int jdoc_parse(jdoc *d, const char *text, size_t len, int max_depth, th_error *err)
{
	int rc = 0;
	d->text = text;
	d->text_len = len;
	d->nodes = d->inline_nodes;
	d->count = 0;
	d->cap = JDOC_INLINE_NODES;
	d->arena = d->inline_arena;
	d->arena_used = 0;
	d->arena_cap = JDOC_INLINE_ARENA;
	d->chunks = NULL;

	if (!text && len > 0)
		return th_err(err, TH_EINVAL, "no text");
	if (len > JDOC_MAX_LEN)
		return th_err(err, TH_ETOOBIG, "JSON text of %zu bytes is too long", len);
	if (max_depth < 1)
		max_depth = 1;

	parser parser_state; /* about 1 KB */
	parser *ps = &parser_state;
	ps->d = d;
	ps->s = (const unsigned char *)text;
	ps->n = len;
	ps->what = NULL;
	ps->err_at = 0;
	ps->oom = 0;
	ps->depth = 0;
	ps->max_depth = max_depth;
	ps->stack = ps->inline_stack;
	ps->keys = ps->inline_keys;
	ps->nkeys = 0;
	ps->keys_cap = KEYS_INLINE;
	if (max_depth > STACK_INLINE) {
		ps->stack = malloc((size_t)max_depth * sizeof *ps->stack);
		if (!ps->stack) {
			ps->stack = ps->inline_stack;
			rc = th_err(err, TH_ENOMEM, "out of memory");
			goto out;
		}
	}

	if (!parse_text(ps)) {
		d->count = 0; /* no root for a text that did not parse */
		if (ps->oom) {
			rc = th_err(err, TH_ENOMEM, "out of memory parsing JSON");
			goto out;
		}
		/* line and column (1-based, in bytes) of the error, for people */
		size_t line = 1, col = 1;
		for (size_t i = 0; i < ps->err_at && i < len; i++) {
			if (text[i] == '\n') {
				line++;
				col = 1;
			} else {
				col++;
			}
		}
		if (ps->what && strcmp(ps->what, "nesting too deep") == 0)
			rc = th_err(err, TH_EINVAL,
			            "nesting deeper than %d levels at line %zu column %zu",
			            max_depth, line, col);
		else
			rc = th_err(err, TH_EINVAL, "%s at line %zu column %zu", ps->what, line,
			            col);
	}
out:
	if (ps->stack != ps->inline_stack)
		free(ps->stack);
	if (ps->keys != ps->inline_keys)
		free(ps->keys);
	return rc;
}

/* See jdoc.h. */
void jdoc_free(jdoc *d)
{
	if (!d)
		return;
	if (d->nodes != d->inline_nodes)
		free(d->nodes);
	d->nodes = d->inline_nodes;
	d->count = 0;
	d->cap = JDOC_INLINE_NODES;
	while (d->chunks) {
		struct jdoc_chunk *next = d->chunks->next;
		free(d->chunks);
		d->chunks = next;
	}
	d->arena = d->inline_arena;
	d->arena_used = 0;
	d->arena_cap = JDOC_INLINE_ARENA;
}

/* ---- reading ---------------------------------------------------------------------------- */

/* See jdoc.h. */
const jnode *jdoc_root(const jdoc *d)
{
	return d && d->count > 0 ? &d->nodes[0] : NULL;
}

/* See jdoc.h. */
bool jdoc_str_eq(const jdoc *d, const jnode *n, const char *k, size_t klen)
{
	if (!d || !n || n->type != JDOC_STRING || !k)
		return false;
	if (!(n->flags & JDOC_F_ESCAPED))
		return n->len == klen && (klen == 0 || (d->text[n->pos] == k[0] &&
		                                        memcmp(d->text + n->pos, k, klen) == 0));
	if (klen > n->len) /* decoding never makes a string longer */
		return false;
	cursor c;
	cursor_init(&c, d, n);
	for (size_t i = 0; i < klen; i++)
		if (cursor_next(&c) != (unsigned char)k[i])
			return false;
	return cursor_next(&c) < 0;
}

/* See jdoc.h. */
const jnode *jdoc_get(const jdoc *d, const jnode *obj, const char *key)
{
	if (!d || !obj || obj->type != JDOC_OBJECT || !key)
		return NULL;
	size_t klen = strlen(key);
	uint32_t i = (uint32_t)(obj - d->nodes) + 1, end = obj->end;
	while (i < end) {
		const jnode *k = &d->nodes[i], *v = k + 1;
		if (jdoc_str_eq(d, k, key, klen))
			return v;
		i = v->end;
	}
	return NULL;
}

/* See jdoc.h. */
bool jdoc_is_object(const jnode *n)
{
	return n && n->type == JDOC_OBJECT;
}

/* See jdoc.h. */
bool jdoc_is_array(const jnode *n)
{
	return n && n->type == JDOC_ARRAY;
}

/* See jdoc.h. */
bool jdoc_is_string(const jnode *n)
{
	return n && n->type == JDOC_STRING;
}

/* See jdoc.h. */
bool jdoc_is_integer(const jnode *n)
{
	return n && n->type == JDOC_NUMBER && (n->flags & JDOC_F_INTEGER);
}

/* See jdoc.h. */
bool jdoc_is_true(const jnode *n)
{
	return n && n->type == JDOC_TRUE;
}

/* See jdoc.h. */
bool jdoc_is_false(const jnode *n)
{
	return n && n->type == JDOC_FALSE;
}

/* See jdoc.h. */
bool jdoc_is_null(const jnode *n)
{
	return n && n->type == JDOC_NULL;
}

/* @size bytes from @d's arena, or NULL when out of memory. */
static char *arena_alloc(jdoc *d, size_t size)
{
	if (d->arena_cap - d->arena_used < size) {
		size_t cap = size > CHUNK_MIN ? size : CHUNK_MIN;
		struct jdoc_chunk *c = malloc(sizeof *c + cap);
		if (!c)
			return NULL;
		c->next = d->chunks;
		d->chunks = c;
		d->arena = c->data;
		d->arena_cap = cap;
		d->arena_used = 0;
	}
	char *p = d->arena + d->arena_used;
	d->arena_used += size;
	return p;
}

/* See jdoc.h. */
const char *jdoc_str(jdoc *d, const jnode *n)
{
	if (!d || !n || n->type != JDOC_STRING)
		return NULL;
	if (n->str)
		return n->str;
	jnode *t = &d->nodes[n - d->nodes]; /* the same token, writable through @d */
	char *out = arena_alloc(d, (size_t)n->len + 1);
	if (!out)
		return NULL;
	const unsigned char *p = (const unsigned char *)d->text + n->pos, *end = p + n->len;
	size_t o = 0;
	if (!(n->flags & JDOC_F_ESCAPED)) {
		memcpy(out, p, n->len);
		o = n->len;
	} else {
		while (p < end) {
			const unsigned char *bs = memchr(p, '\\', (size_t)(end - p));
			size_t run = bs ? (size_t)(bs - p) : (size_t)(end - p);
			memcpy(out + o, p, run);
			o += run;
			p += run;
			if (p < end) {
				p++; /* the backslash */
				o += decode_escape(&p, end, (unsigned char *)out + o);
			}
		}
	}
	out[o] = '\0';
	t->str = out;
	return out;
}

/* See jdoc.h. */
bool jdoc_int(const jdoc *d, const jnode *n, long long *out)
{
	if (!d || !jdoc_is_integer(n))
		return false;
	const char *s = d->text + n->pos;
	size_t i = 0;
	bool neg = s[0] == '-';
	if (neg)
		i++;
	/* accumulate negatively so that INT64_MIN fits; the parser checked range */
	long long v = 0;
	for (; i < n->len; i++)
		v = v * 10 - (s[i] - '0');
	if (!neg)
		v = -v;
	if (out)
		*out = v;
	return true;
}

/* See jdoc.h. */
void jdoc_iter_init(jdoc_iter *it, const jdoc *d, const jnode *container)
{
	it->d = d;
	it->at = it->end = 0;
	it->object = false;
	if (d && (jdoc_is_object(container) || jdoc_is_array(container))) {
		it->at = (uint32_t)(container - d->nodes) + 1;
		it->end = container->end;
		it->object = container->type == JDOC_OBJECT;
	}
}

/* See jdoc.h. */
bool jdoc_iter_next(jdoc_iter *it, const jnode **key, const jnode **val)
{
	if (it->at >= it->end)
		return false;
	const jnode *k = NULL, *v = &it->d->nodes[it->at];
	if (it->object) {
		k = v;
		v = k + 1;
	}
	it->at = v->end;
	if (key)
		*key = k;
	if (val)
		*val = v;
	return true;
}
