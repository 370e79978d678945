/* SPDX-License-Identifier: MIT */
/* json_text.c — see json_text.h. */
#include <string.h>

#include "util/json_text.h"

int json_text_quote(buf *b, const char *s)
{
	int rc = buf_putc(b, '"');
	const unsigned char *p = (const unsigned char *)s;
	size_t len = strlen(s);
	for (size_t i = 0; !rc && i < len;) {
		unsigned char c = p[i];
		if (c == '"' || c == '\\') {
			char esc[2] = {'\\', (char)c};
			rc = buf_append(b, esc, 2);
			i++;
		} else if (c < 0x20) {
			switch (c) {
			case '\n': rc = buf_puts(b, "\\n"); break;
			case '\r': rc = buf_puts(b, "\\r"); break;
			case '\t': rc = buf_puts(b, "\\t"); break;
			default: rc = buf_printf(b, "\\u%04x", c); break;
			}
			i++;
		} else if (c < 0x80) {
			rc = buf_putc(b, (char)c);
			i++;
		} else {
			size_t n = str_utf8_seq((const char *)p + i, len - i);
			if (n) {
				rc = buf_append(b, p + i, n);
				i += n;
			} else {
				rc = buf_puts(b, "\xef\xbf\xbd");
				i++;
			}
		}
	}
	return rc ? rc : buf_putc(b, '"');
}
