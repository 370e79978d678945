/* SPDX-License-Identifier: MIT */
/*
 * table — the one printer of the list commands (webhook ls, token ls, events
 * ls, deliveries ls, handler ls, the sync plan): a header row and aligned
 * columns, two spaces apart, the last column never padded.
 *
 * Cells are shown safely: control characters (C0, DEL, C1), bidirectional
 * overrides and bytes that are not UTF-8 are written as escapes (\n, \t, \r,
 * \xNN, \u202e), never raw, so a hostile value cannot move the cursor or
 * recolour the terminal. Widths are display widths: one per code point,
 * two for wide East Asian characters and emoji, zero for combining marks.
 * A column with a cap is cut to it with "…", never inside a multi-byte
 * sequence or an escape.
 *
 * Usage: cli_table_new(&t, cols, n); cli_table_add(t, cells) per row;
 * cli_table_print(t, stdout, header); cli_table_free(t). A table belongs to
 * one thread.
 */
#ifndef TH_CLI_TABLE_H
#define TH_CLI_TABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#define CLI_TABLE_MAX_COLS 16

typedef struct cli_col {
	const char *name; /* header text, e.g. "ID" */
	size_t max;       /* widest a cell may be (display columns, >= 2); 0: no cap */
	bool right;       /* right-aligned (numbers) */
} cli_col;

typedef struct cli_table cli_table;

/* A table with @ncols columns (1..CLI_TABLE_MAX_COLS) described by @cols,
 * which is borrowed and must outlive the table. Returns 0, TH_EINVAL or
 * TH_ENOMEM. Free with cli_table_free(). */
int cli_table_new(cli_table **out, const cli_col *cols, size_t ncols);

/* Append a row of ncols cells (NULL shows as "-"). The cells are copied,
 * escaped and cut now. Returns 0 or TH_ENOMEM (the row is then not added). */
int cli_table_add(cli_table *t, const char *const *cells);

/* Print the rows (after a header row unless @header is false) to @f.
 * Returns 0, or TH_EIO when writing failed. */
int cli_table_print(const cli_table *t, FILE *f, bool header);

/* Free @t and its cells. NULL-safe. */
void cli_table_free(cli_table *t);

/* Write @in as it would show in a cell into @out (size @outsz, always
 * NUL-terminated when outsz > 0): escaped, then cut to @max display columns
 * with "…" when wider (0: no cap). Returns the display width of what was
 * written. For tests and one-line outputs. */
size_t cli_cell_format(const char *in, size_t max, char *out, size_t outsz);

/* The display width of UTF-8 @s as cli_cell_format would show it. */
size_t cli_display_width(const char *s);

#endif
