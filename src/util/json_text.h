/* SPDX-License-Identifier: MIT */
/* json_text — writing JSON string literals by hand (for logs and streamed
 * output) without building a jansson tree. */
#ifndef TH_JSON_TEXT_H
#define TH_JSON_TEXT_H

#include "util/util.h"

/* Append @s as a quoted JSON string: escapes quotes, backslashes and control
 * characters; invalid UTF-8 bytes become U+FFFD so the output stays valid. */
int json_text_quote(buf *b, const char *s);

#endif
