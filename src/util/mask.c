/* SPDX-License-Identifier: MIT */
/* mask.c — the one place that decides how a secret looks when printed. */
#include <string.h>

#include "util/util.h"

void mask_secret(const char *secret, char *out, size_t size)
{
	if (!size)
		return;
	size_t n = secret ? strlen(secret) : 0;
	if (n < 12) {
		str_copy(out, size, "****");
		return;
	}
	/* first four, an ellipsis (U+2026), last four: "ATTA…1a2B" */
	str_printf(out, size, "%.4s\xe2\x80\xa6%s", secret, secret + n - 4);
}

void mask_url(const char *url, char *out, size_t size)
{
	if (!size)
		return;
	if (!url) {
		str_copy(out, size, "");
		return;
	}
	const char *scheme = strstr(url, "://");
	const char *auth = scheme ? scheme + 3 : url;
	const char *at = strchr(auth, '@');
	const char *slash = strchr(auth, '/');
	if (!at || (slash && slash < at)) {
		str_copy(out, size, url);
		return;
	}
	const char *colon = memchr(auth, ':', (size_t)(at - auth));
	if (!colon) {
		str_copy(out, size, url);
		return;
	}
	str_printf(out, size, "%.*s:****%s", (int)(colon - url), url, at);
}
