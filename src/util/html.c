/* SPDX-License-Identifier: MIT */
/* html.c — escaping text for HTML element content and attribute values. */
#include "util/util.h"

int html_escape(buf *b, const char *s)
{
	if (!s)
		return 0;
	const char *run = s;
	for (; *s; s++) {
		const char *rep;
		switch (*s) {
		case '&': rep = "&amp;"; break;
		case '<': rep = "&lt;"; break;
		case '>': rep = "&gt;"; break;
		case '"': rep = "&quot;"; break;
		case '\'': rep = "&#39;"; break;
		default: continue;
		}
		int rc = buf_append(b, run, (size_t)(s - run));
		if (!rc)
			rc = buf_puts(b, rep);
		if (rc)
			return rc;
		run = s + 1;
	}
	return buf_append(b, run, (size_t)(s - run));
}
