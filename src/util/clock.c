/* SPDX-License-Identifier: MIT */
/* clock.c — wall and monotonic time, ISO 8601 in UTC. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "util/util.h"

int64_t time_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t time_mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t time_mono_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

void time_format_iso(int64_t ms, char out[32])
{
	time_t secs = (time_t)(ms / 1000);
	struct tm tm;
	if (!gmtime_r(&secs, &tm)) {
		str_copy(out, 32, "1970-01-01T00:00:00.000Z");
		return;
	}
	char date[24];
	strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%S", &tm);
	str_printf(out, 32, "%s.%03dZ", date, (int)(ms % 1000));
}

int time_parse_iso(const char *s, int64_t *out_ms)
{
	if (!s)
		return TH_EINVAL;
	struct tm tm;
	memset(&tm, 0, sizeof tm);
	const char *p = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
	if (!p)
		return TH_EINVAL;
	int ms = 0;
	if (*p == '.') {
		p++;
		int digits = 0;
		while (*p >= '0' && *p <= '9') {
			if (digits < 3)
				ms = ms * 10 + (*p - '0');
			digits++;
			p++;
		}
		if (!digits)
			return TH_EINVAL;
		for (; digits < 3; digits++)
			ms *= 10;
	}
	if (strcmp(p, "Z") != 0 && strcmp(p, "+00:00") != 0)
		return TH_EINVAL;
	time_t t = timegm(&tm);
	if (t == (time_t)-1)
		return TH_EINVAL;
	*out_ms = (int64_t)t * 1000 + ms;
	return 0;
}
