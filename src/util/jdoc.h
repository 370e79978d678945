/* SPDX-License-Identifier: MIT */
/*
 * jdoc — a strict, allocation-light JSON reader for the receive path.
 *
 * jdoc_parse() validates a whole text in one pass, without recursion, and
 * records a flat tape of tokens (one array: inline in the jdoc for small
 * documents, doubled on the heap for big ones). Strings are not copied while
 * parsing: jdoc_str() decodes one on first use into an arena owned by the
 * jdoc and caches it. Every container token knows where it ends, so a lookup
 * walks the members of one object only.
 *
 * Strictness is exactly jansson 2.14's json_loadb(JSON_DECODE_ANY |
 * JSON_REJECT_DUPLICATES), plus: no raw NUL byte anywhere, and nesting deeper
 * than a caller-chosen limit is refused:
 *   - RFC 8259 grammar only; any value at the top; whitespace is space, \t,
 *     \n, \r; nothing but whitespace after the value;
 *   - strings: no raw control characters, escapes \" \\ \/ \b \f \n \r \t
 *     \uXXXX only, surrogates paired, no \u0000, raw bytes valid UTF-8 (no
 *     overlongs, no surrogates, at most U+10FFFF);
 *   - numbers: integers (no fraction, no exponent) must fit int64 (jansson:
 *     "too big integer"), other numbers must not overflow a double (jansson:
 *     "real number overflow"; underflow to 0 is accepted);
 *   - duplicate keys in one object, compared decoded ("a" == "\u0061").
 *
 * Handles (const jnode *) point into the tape; NULL means "absent" and every
 * function below takes NULL. They stay valid until jdoc_free(). A jdoc is not
 * thread-safe; different jdocs are independent.
 */
#ifndef TH_JDOC_H
#define TH_JDOC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/util.h"

enum jdoc_type {
	JDOC_NULL = 1,
	JDOC_FALSE,
	JDOC_TRUE,
	JDOC_NUMBER,
	JDOC_STRING,
	JDOC_ARRAY,
	JDOC_OBJECT
};

/* One token of the tape. Objects are followed by their members as key
 * (a string token), value pairs; arrays by their elements. */
typedef struct jnode {
	const char *str; /* strings: the decoded value once jdoc_str() made it, else NULL */
	uint32_t pos;    /* byte offset in the text (strings: just after the opening quote) */
	uint32_t len;    /* strings: raw bytes between the quotes; numbers: token length */
	uint32_t end;    /* index of the first token after this one and all it contains */
	uint8_t type;    /* enum jdoc_type */
	uint8_t flags;   /* JDOC_F_* */
} jnode;

#define JDOC_F_ESCAPED 1 /* string: the raw text has a backslash (decoding changes it) */
#define JDOC_F_INTEGER 2 /* number: no fraction, no exponent (fits int64) */

#define JDOC_INLINE_NODES 192    /* tape kept inside the jdoc (a Trello delivery needs ~150) */
#define JDOC_INLINE_ARENA 2048   /* first arena chunk kept inside the jdoc */
#define JDOC_MAX_LEN 0xFFFFFFF0u /* longest text accepted (offsets are 32 bits) */

struct jdoc_chunk; /* a heap chunk of the string arena (jdoc.c) */

/* A parsed document. Lives wherever the caller puts it (a stack is fine:
 * about 7 KB); the text it was parsed from is borrowed and must outlive it.
 * Every field is private to jdoc.c. */
typedef struct jdoc {
	const char *text; /* borrowed */
	size_t text_len;
	jnode *nodes; /* the tape: inline_nodes or a heap array */
	uint32_t count, cap;
	char *arena; /* current arena chunk: inline_arena or the data of chunks */
	size_t arena_used, arena_cap;
	struct jdoc_chunk *chunks; /* heap arena chunks, newest first */
	jnode inline_nodes[JDOC_INLINE_NODES];
	char inline_arena[JDOC_INLINE_ARENA];
} jdoc;

/* Parse @len bytes of @text (need not be NUL-terminated; borrowed until
 * jdoc_free()) into @d, refusing containers nested deeper than @max_depth
 * (top-level object or array = 1; at least 1). @d needs no initialisation.
 * Returns 0; TH_EINVAL with "<what> at line L column C" in @err for text that
 * is not strict JSON; TH_ETOOBIG for texts over JDOC_MAX_LEN; TH_ENOMEM.
 * Call jdoc_free(@d) afterwards in every case. */
int jdoc_parse(jdoc *d, const char *text, size_t len, int max_depth, th_error *err);

/* Free what @d allocated (tape, arena). Safe on a jdoc whose parse failed
 * and twice in a row; NULL-safe. Every handle and string from @d dies. */
void jdoc_free(jdoc *d);

/* The top-level value, or NULL when nothing was parsed. */
const jnode *jdoc_root(const jdoc *d);

/* The value of member @key (compared with the decoded key) of @obj; NULL when
 * @obj is NULL or not an object, or has no such member. */
const jnode *jdoc_get(const jdoc *d, const jnode *obj, const char *key);

/* Type predicates: false for NULL. */
bool jdoc_is_object(const jnode *n);
bool jdoc_is_array(const jnode *n);
bool jdoc_is_string(const jnode *n);
bool jdoc_is_integer(const jnode *n); /* a number without fraction or exponent */
bool jdoc_is_true(const jnode *n);
bool jdoc_is_false(const jnode *n);
bool jdoc_is_null(const jnode *n);

/* The decoded, NUL-terminated value of string @n (a value or a key), or NULL
 * when @n is not a string or out of memory. Decoded on first use into @d's
 * arena and cached; owned by @d (valid until jdoc_free()). */
const char *jdoc_str(jdoc *d, const jnode *n);

/* Does the decoded key or string @n equal the @klen bytes of @k? */
bool jdoc_str_eq(const jdoc *d, const jnode *n, const char *k, size_t klen);

/* The value of integer @n into *@out; false when @n is not an integer. */
bool jdoc_int(const jdoc *d, const jnode *n, long long *out);

/* Walking the members of an object or the elements of an array:
 *   jdoc_iter it;
 *   jdoc_iter_init(&it, d, obj);
 *   while (jdoc_iter_next(&it, &key, &val)) ...
 * For arrays *key is NULL. Nothing to free. */
typedef struct jdoc_iter {
	const jdoc *d;
	uint32_t at, end;
	bool object;
} jdoc_iter;

void jdoc_iter_init(jdoc_iter *it, const jdoc *d, const jnode *container);
bool jdoc_iter_next(jdoc_iter *it, const jnode **key, const jnode **val);

#endif
