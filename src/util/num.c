/* SPDX-License-Identifier: MIT */
/* num.c — strict number and duration parsing (no atoi, no silent garbage). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "util/util.h"

int num_parse_i64(const char *s, int64_t min, int64_t max, int64_t *out)
{
	if (!s || !*s)
		return TH_EINVAL;
	const char *p = s;
	if (*p == '-') {
		if (min >= 0)
			return TH_EINVAL;
		p++;
	}
	if (*p < '0' || *p > '9')
		return TH_EINVAL; /* rejects "+3", " 3", "-", "" */
	for (const char *q = p; *q; q++)
		if (*q < '0' || *q > '9')
			return TH_EINVAL;
	errno = 0;
	char *end = NULL;
	long long v = strtoll(s, &end, 10);
	if (errno == ERANGE || !end || *end)
		return TH_EINVAL;
	if (v < min || v > max)
		return TH_EINVAL;
	*out = (int64_t)v;
	return 0;
}

/* "12" or "1.25" -> value * 1000 (milli-units), at most 3 decimals. */
static int parse_decimal_milli(const char *s, size_t len, int64_t *out)
{
	int64_t whole = 0, frac = 0;
	size_t i = 0, digits = 0, fdigits = 0;
	for (; i < len && s[i] >= '0' && s[i] <= '9'; i++, digits++) {
		if (whole > (INT64_MAX / 10000))
			return TH_EINVAL;
		whole = whole * 10 + (s[i] - '0');
	}
	if (!digits)
		return TH_EINVAL;
	if (i < len && s[i] == '.') {
		i++;
		for (; i < len && s[i] >= '0' && s[i] <= '9'; i++, fdigits++) {
			if (fdigits >= 3)
				return TH_EINVAL;
			frac = frac * 10 + (s[i] - '0');
		}
		if (!fdigits)
			return TH_EINVAL;
		for (size_t k = fdigits; k < 3; k++)
			frac *= 10;
	}
	if (i != len)
		return TH_EINVAL;
	*out = whole * 1000 + frac;
	return 0;
}

int num_parse_seconds_ms(const char *s, int64_t *out_ms)
{
	if (!s)
		return TH_EINVAL;
	return parse_decimal_milli(s, strlen(s), out_ms);
}

int num_parse_duration_ms(const char *s, int64_t *out_ms)
{
	if (!s || !*s)
		return TH_EINVAL;
	size_t n = strlen(s);
	size_t ulen = 0;
	while (ulen < n && ((s[n - 1 - ulen] >= 'a' && s[n - 1 - ulen] <= 'z')))
		ulen++;
	if (!ulen || ulen == n)
		return TH_EINVAL;
	const char *unit = s + n - ulen;
	int64_t mult; /* milliseconds per unit, applied to a milli-value */
	if (strcmp(unit, "ms") == 0)
		mult = 1;
	else if (strcmp(unit, "s") == 0)
		mult = 1000;
	else if (strcmp(unit, "m") == 0)
		mult = 60 * 1000;
	else if (strcmp(unit, "h") == 0)
		mult = 3600 * 1000;
	else if (strcmp(unit, "d") == 0)
		mult = 86400 * 1000;
	else
		return TH_EINVAL;
	int64_t milli;
	if (parse_decimal_milli(s, n - ulen, &milli))
		return TH_EINVAL;
	if (milli > INT64_MAX / mult)
		return TH_EINVAL;
	int64_t v = milli * mult / 1000;
	if (v <= 0 && milli > 0)
		return TH_EINVAL; /* "0.1ms" */
	*out_ms = v;
	return 0;
}
