/* SPDX-License-Identifier: MIT */
/* table.c — aligned, escaped columns for the list commands; see table.h. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cli/table.h"
#include "util/util.h"

struct cli_table {
	const cli_col *cols;
	size_t ncols;
	char **cells; /* rows * ncols formatted cells */
	size_t *widths;
	size_t rows, cap;
	size_t colw[CLI_TABLE_MAX_COLS];
};

/* The longest text one unit can be shown as: "\u202e". */
#define UNIT_MAX 6

/* Is @cp drawn two columns wide? The East Asian Wide and Fullwidth blocks and
 * the emoji planes; good enough for names and summaries, not a full UAX #11. */
static bool is_wide(uint32_t cp)
{
	return (cp >= 0x1100 && cp <= 0x115F) || (cp >= 0x2E80 && cp <= 0x303E) ||
	       (cp >= 0x3041 && cp <= 0x33FF) || (cp >= 0x3400 && cp <= 0x4DBF) ||
	       (cp >= 0x4E00 && cp <= 0x9FFF) || (cp >= 0xA000 && cp <= 0xA4CF) ||
	       (cp >= 0xAC00 && cp <= 0xD7A3) || (cp >= 0xF900 && cp <= 0xFAFF) ||
	       (cp >= 0xFE30 && cp <= 0xFE4F) || (cp >= 0xFF00 && cp <= 0xFF60) ||
	       (cp >= 0xFFE0 && cp <= 0xFFE6) || (cp >= 0x1F300 && cp <= 0x1F64F) ||
	       (cp >= 0x1F900 && cp <= 0x1F9FF) || (cp >= 0x20000 && cp <= 0x3FFFD);
}

/* Combining marks and variation selectors take no column of their own. */
static bool is_zero_width(uint32_t cp)
{
	return (cp >= 0x0300 && cp <= 0x036F) || (cp >= 0x1AB0 && cp <= 0x1AFF) ||
	       (cp >= 0x20D0 && cp <= 0x20FF) || (cp >= 0xFE00 && cp <= 0xFE0F) ||
	       (cp >= 0xFE20 && cp <= 0xFE2F) || cp == 0x200B || cp == 0x200D;
}

/* Code points shown as \uXXXX: C1 controls, direction marks and overrides,
 * line/paragraph separators, the BOM: each can reorder or hide what follows. */
static bool is_escaped_cp(uint32_t cp)
{
	return (cp >= 0x80 && cp <= 0x9F) || cp == 0x200E || cp == 0x200F ||
	       (cp >= 0x2028 && cp <= 0x202E) || (cp >= 0x2066 && cp <= 0x2069) || cp == 0xFEFF;
}

/* Decode one strict UTF-8 sequence at @s (no overlongs, surrogates or code
 * points past U+10FFFF). Returns its length, or 0 when it is not one. */
static size_t utf8_decode(const unsigned char *s, uint32_t *cp)
{
	size_t n;
	uint32_t min, c = s[0];
	if (c >= 0xC2 && c <= 0xDF) {
		n = 2, min = 0x80, c &= 0x1F;
	} else if (c >= 0xE0 && c <= 0xEF) {
		n = 3, min = 0x800, c &= 0x0F;
	} else if (c >= 0xF0 && c <= 0xF4) {
		n = 4, min = 0x10000, c &= 0x07;
	} else {
		return 0;
	}
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xC0) != 0x80)
			return 0; /* also stops at the NUL */
		c = (c << 6) | (s[i] & 0x3F);
	}
	if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF))
		return 0;
	*cp = c;
	return n;
}

/* The next display unit of @s: what it shows as (@shown, @len bytes, at most
 * UNIT_MAX) and its width. Returns the input bytes it covers (>= 1). */
static size_t next_unit(const unsigned char *s, char shown[UNIT_MAX + 1], size_t *len,
                        size_t *width)
{
	static const char hex[] = "0123456789abcdef";
	unsigned char c = s[0];
	uint32_t cp = c;
	size_t in = 1;
	if (c >= 0x80 && (in = utf8_decode(s, &cp)) == 0) {
		/* not UTF-8: the byte itself, escaped */
		shown[0] = '\\', shown[1] = 'x', shown[2] = hex[c >> 4], shown[3] = hex[c & 15];
		*len = *width = 4;
		return 1;
	}
	if (cp < 0x20 || cp == 0x7F) {
		char e = cp == '\n' ? 'n' : cp == '\t' ? 't' : cp == '\r' ? 'r' : 0;
		if (e) {
			shown[0] = '\\', shown[1] = e;
			*len = *width = 2;
		} else {
			shown[0] = '\\', shown[1] = 'x', shown[2] = hex[cp >> 4],
			shown[3] = hex[cp & 15];
			*len = *width = 4;
		}
		return 1;
	}
	if (is_escaped_cp(cp)) {
		shown[0] = '\\', shown[1] = 'u';
		for (int k = 0; k < 4; k++)
			shown[2 + k] = hex[(cp >> (12 - 4 * k)) & 15];
		*len = *width = 6;
		return in;
	}
	memcpy(shown, s, in);
	*len = in;
	*width = is_zero_width(cp) ? 0 : is_wide(cp) ? 2 : 1;
	return in;
}

size_t cli_display_width(const char *s)
{
	size_t w = 0;
	const unsigned char *p = (const unsigned char *)(s ? s : "");
	while (*p) {
		char shown[UNIT_MAX + 1];
		size_t len, uw;
		p += next_unit(p, shown, &len, &uw);
		w += uw;
	}
	return w;
}

size_t cli_cell_format(const char *in, size_t max, char *out, size_t outsz)
{
	if (!outsz)
		return 0;
	const unsigned char *p = (const unsigned char *)(in ? in : "");
	size_t total = cli_display_width(in);
	bool cut = max && total > max;
	/* room for the ellipsis (one column) when cutting */
	size_t limit = cut ? (max > 1 ? max - 1 : 0) : total;
	size_t w = 0, o = 0;
	while (*p) {
		char shown[UNIT_MAX + 1];
		size_t len, uw;
		size_t step = next_unit(p, shown, &len, &uw);
		if (w + uw > limit || o + len + 1 > outsz)
			break;
		memcpy(out + o, shown, len);
		o += len;
		w += uw;
		p += step;
	}
	if (cut && o + 3 + 1 <= outsz) {
		memcpy(out + o, "\xE2\x80\xA6", 3); /* … */
		o += 3;
		w++;
	}
	out[o] = '\0';
	return w;
}

int cli_table_new(cli_table **out, const cli_col *cols, size_t ncols)
{
	*out = NULL;
	if (!cols || ncols == 0 || ncols > CLI_TABLE_MAX_COLS)
		return TH_EINVAL;
	cli_table *t = calloc(1, sizeof *t);
	if (!t)
		return TH_ENOMEM;
	t->cols = cols;
	t->ncols = ncols;
	for (size_t i = 0; i < ncols; i++)
		t->colw[i] = cli_display_width(cols[i].name);
	*out = t;
	return 0;
}

int cli_table_add(cli_table *t, const char *const *cells)
{
	if (t->rows == t->cap) {
		size_t nc = t->cap ? t->cap * 2 : 16;
		char **ncells = realloc(t->cells, nc * t->ncols * sizeof *ncells);
		if (!ncells)
			return TH_ENOMEM;
		t->cells = ncells;
		size_t *nw = realloc(t->widths, nc * t->ncols * sizeof *nw);
		if (!nw)
			return TH_ENOMEM;
		t->widths = nw;
		t->cap = nc;
	}
	char **row = &t->cells[t->rows * t->ncols];
	size_t *rw = &t->widths[t->rows * t->ncols];
	for (size_t i = 0; i < t->ncols; i++) {
		const char *v = cells[i] ? cells[i] : "-";
		/* every input byte shows as at most UNIT_MAX bytes, plus "…" and the NUL */
		size_t sz = strlen(v) * UNIT_MAX + 4;
		char *tmp = malloc(sz);
		row[i] = NULL;
		if (tmp) {
			rw[i] = cli_cell_format(v, t->cols[i].max, tmp, sz);
			row[i] = str_dup(tmp);
			free(tmp);
		}
		if (!row[i]) {
			for (size_t k = 0; k < i; k++)
				free(row[k]);
			return TH_ENOMEM;
		}
	}
	for (size_t i = 0; i < t->ncols; i++)
		if (rw[i] > t->colw[i])
			t->colw[i] = rw[i];
	t->rows++;
	return 0;
}

/* One line: @cells with their @widths, padded to the column widths. Spaces
 * are written only before something visible, so no line ends in blanks. */
static void print_line(const cli_table *t, FILE *f, const char *const *cells, const size_t *widths)
{
	size_t spaces = 0;
	for (size_t i = 0; i < t->ncols; i++) {
		size_t pad = t->colw[i] - widths[i];
		spaces += i ? 2 : 0;
		if (t->cols[i].right)
			spaces += pad;
		if (cells[i][0]) {
			fprintf(f, "%*s%s", (int)spaces, "", cells[i]);
			spaces = 0;
		}
		if (!t->cols[i].right)
			spaces += pad;
	}
	fputc('\n', f);
}

int cli_table_print(const cli_table *t, FILE *f, bool header)
{
	if (header) {
		const char *names[CLI_TABLE_MAX_COLS];
		size_t widths[CLI_TABLE_MAX_COLS];
		for (size_t i = 0; i < t->ncols; i++) {
			names[i] = t->cols[i].name;
			widths[i] = cli_display_width(names[i]);
		}
		print_line(t, f, names, widths);
	}
	for (size_t r = 0; r < t->rows; r++)
		print_line(t, f, (const char *const *)&t->cells[r * t->ncols],
		           &t->widths[r * t->ncols]);
	return fflush(f) || ferror(f) ? TH_EIO : 0;
}

void cli_table_free(cli_table *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < t->rows * t->ncols; i++)
		free(t->cells[i]);
	free(t->cells);
	free(t->widths);
	free(t);
}
