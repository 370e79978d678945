/* SPDX-License-Identifier: MIT */
/*
 * fuzz_jdoc — util/jdoc.c, the strict JSON reader of the receive path.
 *
 * Besides "no crash": jdoc.h promises exactly jansson's strictness
 * (json_loadb with JSON_DECODE_ANY | JSON_REJECT_DUPLICATES) plus "no raw
 * NUL" and a depth limit. So every input is also given to jansson and the
 * two must agree on accept / refuse (a differential check); for accepted
 * texts every string is decoded, every integer read, every object looked up
 * by each of its keys, and string values are compared with jansson's.
 */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "util/jdoc.h"

#define DEPTH 256 /* well under jansson's own limit (2048) */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Deepest nesting of @t by brackets outside strings (to skip the depth rule). */
static int depth_of(const char *t, size_t n)
{
	int d = 0, max = 0;
	bool in_str = false;
	for (size_t i = 0; i < n; i++) {
		char c = t[i];
		if (in_str) {
			if (c == '\\')
				i++;
			else if (c == '"')
				in_str = false;
		} else if (c == '"') {
			in_str = true;
		} else if (c == '[' || c == '{') {
			if (++d > max)
				max = d;
		} else if (c == ']' || c == '}') {
			d--;
		}
	}
	return max;
}

/* Walk jdoc node @n next to jansson value @j, checking they match. */
static void walk(jdoc *d, const jnode *n, json_t *j, int level)
{
	if (level > DEPTH + 1)
		abort();
	if (jdoc_is_string(n)) {
		const char *s = jdoc_str(d, n);
		if (!s || !json_is_string(j))
			abort();
		size_t jl = json_string_length(j);
		if (strlen(s) != jl || memcmp(s, json_string_value(j), jl) != 0)
			abort();
		if (!jdoc_str_eq(d, n, s, jl))
			abort();
	} else if (jdoc_is_integer(n)) {
		long long v;
		if (!jdoc_int(d, n, &v) || !json_is_integer(j) || v != json_integer_value(j))
			abort();
	} else if (jdoc_is_object(n)) {
		if (!json_is_object(j))
			abort();
		jdoc_iter it;
		const jnode *k, *v;
		size_t count = 0;
		jdoc_iter_init(&it, d, n);
		while (jdoc_iter_next(&it, &k, &v)) {
			const char *ks = jdoc_str(d, k);
			if (!ks)
				abort();
			count++;
			/* keys with an embedded \u escape of NUL cannot exist (refused) */
			if (jdoc_get(d, n, ks) != v)
				abort();
			json_t *jv = json_object_get(j, ks);
			if (!jv)
				abort();
			walk(d, v, jv, level + 1);
		}
		if (count != json_object_size(j))
			abort();
	} else if (jdoc_is_array(n)) {
		if (!json_is_array(j))
			abort();
		jdoc_iter it;
		const jnode *k, *v;
		size_t i = 0;
		jdoc_iter_init(&it, d, n);
		while (jdoc_iter_next(&it, &k, &v)) {
			if (k)
				abort();
			walk(d, v, json_array_get(j, i++), level + 1);
		}
		if (i != json_array_size(j))
			abort();
	} else if (jdoc_is_true(n)) {
		if (!json_is_true(j))
			abort();
	} else if (jdoc_is_false(n)) {
		if (!json_is_false(j))
			abort();
	} else if (jdoc_is_null(n)) {
		if (!json_is_null(j))
			abort();
	} else if (!json_is_real(j) && !json_is_integer(j)) {
		abort(); /* a number that is not an integer */
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = malloc(size ? size : 1);
	if (!text)
		return 0;
	if (size)
		memcpy(text, data, size);
	jdoc d;
	th_error err = {0, {0}};
	int rc = jdoc_parse(&d, text, size, DEPTH, &err);
	json_error_t je;
	json_t *j = json_loadb(text, size, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &je);
	bool has_nul = memchr(text, '\0', size) != NULL;
	bool too_deep = depth_of(text, size) > DEPTH;
	if (rc == 0) {
		if (!j || has_nul)
			abort(); /* jdoc accepted what jansson refuses */
		walk(&d, jdoc_root(&d), j, 1);
	} else {
		if (!err.msg[0])
			abort();
		if (j && !has_nul && !too_deep)
			abort(); /* jdoc refused what jansson accepts */
	}
	json_decref(j);
	jdoc_free(&d);
	jdoc_free(&d); /* documented as safe twice */
	free(text);
	return 0;
}
