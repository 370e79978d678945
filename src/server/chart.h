/* SPDX-License-Identifier: MIT */
/*
 * chart — server-side charts for the admin pages, as inline SVG: a stacked
 * bar chart (e.g. events per hour, stacked by action type) and a sparkline
 * (e.g. one webhook's events per hour). A pure module: it reads the numbers
 * and labels it is given and appends markup to a buf; no I/O, no store, no
 * global state, no locale (every number is printed as an integer).
 *
 * What a page gets for each chart:
 *   <figure class="chart ...">
 *     <figcaption>TITLE</figcaption>
 *     <svg role="img" aria-labelledby="ID-title ID-desc" ...>
 *       <title id="ID-title">TITLE</title><desc id="ID-desc">a summary</desc>
 *       axes with labels, ticks, bars (each with its own <title> tooltip), legend
 *     </svg>
 *     <table class="chart-table">the same numbers, for screen readers and
 *       for anyone without SVG (a page's stylesheet may hide it visually)</table>
 *   </figure>
 * Colours and sizes are SVG presentation attributes, not style="" (the admin's
 * Content-Security-Policy has no 'unsafe-inline'); nothing needs JavaScript.
 *
 * Every text (titles, series names such as Trello action types, bucket
 * labels) is escaped for HTML and SVG alike; invalid UTF-8 and control
 * characters become U+FFFD; long names are shortened with "…" where space is
 * short (legend, axis), and kept up to CHART_TEXT_MAX characters in tooltips
 * and the table.
 */
#ifndef TH_CHART_H
#define TH_CHART_H

#include <stddef.h>
#include <stdint.h>

#include "util/util.h"

#define CHART_MAX_BUCKETS 1000 /* more is refused (TH_EINVAL) */
#define CHART_MAX_SERIES 8     /* series past the 7th are summed into "other" */
#define CHART_TEXT_MAX 200     /* characters of any one text kept, at most */

/* One series of a stacked bar chart: a name and one value per bucket. */
typedef struct chart_series {
	const char *name;       /* any bytes (escaped; NULL shows as "(none)") */
	const uint64_t *values; /* nbuckets values, not owned */
} chart_series;

/* A stacked bar chart: one bar per bucket (e.g. per hour), one coloured
 * segment per series, bottom to top in the order given. */
typedef struct chart_bars {
	const char *id;                   /* unique in the page, 1-64 of [A-Za-z0-9_-] */
	const char *title;                /* "Events received per hour, last 24 hours" */
	const char *x_label;              /* "hour (UTC)" */
	const char *y_label;              /* "events" */
	const char *const *bucket_labels; /* nbuckets labels ("14:00"), not owned */
	size_t nbuckets;                  /* 0 renders an empty chart saying so */
	const chart_series *series;       /* nseries series, not owned */
	size_t nseries;
} chart_bars;

/* Append @c as a <figure> with an inline SVG stacked bar chart and its table
 * to @out. Returns 0, TH_EINVAL (a bad id, too many buckets, a NULL array
 * where a count says there are items) or the buf's failure (TH_ETOOBIG,
 * TH_ENOMEM; @out is then poisoned, see buf). Reads @c only; thread-safe. */
int chart_bars_render(buf *out, const chart_bars *c);

/* A sparkline: a small line of @n values (oldest first) without axes, with
 * a <title> that says what it shows and its total and peak. */
typedef struct chart_spark {
	const char *id;            /* as chart_bars.id */
	const char *title;         /* "Events per hour, last 24 hours: Roadmap 2027" */
	const uint64_t *values;    /* n values, not owned */
	const char *const *labels; /* n labels for the table, or NULL */
	size_t n;                  /* 0 renders a flat line saying "no data" */
} chart_spark;

/* Append @s as a <figure class="chart spark"> with a 120×24 inline SVG and
 * a one-row table of the values. Returns as chart_bars_render. */
int chart_spark_render(buf *out, const chart_spark *s);

#endif
