/* SPDX-License-Identifier: MIT */
/*
 * progress — one redrawn status line on stderr for long commands (sync now;
 * backfill, export and prune can use it the same way): done / total, the
 * percentage, the rate and the time left, e.g.
 *     sync: Trello calls 12/40  30%  5.2/s  ETA 5s
 * Drawn only when the stream is a terminal (isatty), at most every
 * CLI_PROGRESS_REDRAW_MS and once more when done reaches total; nothing at all
 * is written otherwise, so pipes and logs stay clean. cli_progress_end()
 * erases the line. A cli_progress belongs to one thread.
 */
#ifndef TH_CLI_PROGRESS_H
#define TH_CLI_PROGRESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define CLI_PROGRESS_REDRAW_MS 100

typedef struct cli_progress {
	FILE *f;
	bool on;       /* f is a terminal */
	bool drawn;    /* a line is on screen (end erases it) */
	char what[64]; /* "sync: Trello calls" */
	uint64_t done, total;
	int64_t t0_ms;   /* when this count started (monotonic) */
	int64_t last_ms; /* last redraw, 0 for none yet */
} cli_progress;

/* Start reporting on @f under the label @what (copied, cut to fit). Decides
 * once whether @f is a terminal. */
void cli_progress_init(cli_progress *p, FILE *f, const char *what);

/* @done of @total finished: redraw if due. A count that goes back or a new
 * total starts the rate and the time left over. */
void cli_progress_set(cli_progress *p, uint64_t done, uint64_t total);

/* Erase the line, if one was drawn. */
void cli_progress_end(cli_progress *p);

/* The text of one line into @out (always NUL-terminated): @what, done/total,
 * percent, rate per second over @elapsed_ms and the time left; rate and ETA
 * only once something is done. Pure, for tests. */
void cli_progress_format(char *out, size_t outsz, const char *what, uint64_t done, uint64_t total,
                         int64_t elapsed_ms);

#endif
