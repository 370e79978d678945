/* SPDX-License-Identifier: MIT */
/*
 * chart.c — stacked bars and sparklines as inline SVG (see chart.h).
 *
 * Geometry is integer pixels in a fixed viewBox (the SVG scales to its box);
 * values are scaled against a "nice" maximum (1, 2 or 5 × 10^k) so the
 * y-axis ticks read as round numbers. A non-zero value is never drawn
 * thinner than one pixel: a spike must not make the rest of the day vanish.
 */
#include <stdlib.h>
#include <string.h>

#include "server/chart.h"

/* Colour-blind-safe palette (Okabe–Ito), then grey for "other". */
static const char *const palette[CHART_MAX_SERIES] = {"#0072b2", "#e69f00", "#009e73", "#cc79a7",
                                                      "#56b4e9", "#d55e00", "#7a6a00", "#8c8c8c"};

enum {
	BAR_W = 640, /* viewBox width */
	PLOT_X = 56, /* left of the plot: room for tick labels and the y label */
	PLOT_Y = 10, /* top of the plot */
	PLOT_W = BAR_W - PLOT_X - 12,
	PLOT_H = 170,
	LEGEND_COLS = 4, /* legend items per row */
	LEGEND_ROW_H = 18,
	LABEL_CHARS = 10,  /* x-axis labels are shortened past this */
	LEGEND_CHARS = 18, /* legend names are shortened past this */
	MAX_X_LABELS = 12, /* at most this many x labels are drawn */
	SPARK_W = 120,
	SPARK_H = 24,
};

static uint64_t add_sat(uint64_t a, uint64_t b)
{
	return a + b < a ? UINT64_MAX : a + b;
}

/* Append @s for HTML/SVG text or attribute values: & < > " ' escaped, each
 * invalid UTF-8 byte and each control character as U+FFFD, at most @max
 * characters, then "…" when cut. NULL is written as "(none)". */
static void put_text(buf *b, const char *s, size_t max)
{
	if (!s)
		s = "(none)";
	if (max > CHART_TEXT_MAX)
		max = CHART_TEXT_MAX;
	size_t len = strlen(s), chars = 0;
	for (size_t i = 0; i < len; chars++) {
		if (chars == max) {
			buf_puts(b, "\xe2\x80\xa6"); /* … */
			return;
		}
		unsigned char c = (unsigned char)s[i];
		size_t n = str_utf8_seq(s + i, len - i);
		if (n == 0 || c < 0x20 || c == 0x7f) {
			buf_puts(b, "\xef\xbf\xbd"); /* U+FFFD */
			i++;
			continue;
		}
		/* C1 controls (U+0080..U+009F) are not text either */
		if (n == 2 && c == 0xc2 && (unsigned char)s[i + 1] < 0xa0) {
			buf_puts(b, "\xef\xbf\xbd");
			i += 2;
			continue;
		}
		switch (c) {
		case '&': buf_puts(b, "&amp;"); break;
		case '<': buf_puts(b, "&lt;"); break;
		case '>': buf_puts(b, "&gt;"); break;
		case '"': buf_puts(b, "&quot;"); break;
		case '\'': buf_puts(b, "&#39;"); break;
		default: buf_append(b, s + i, n);
		}
		i += n;
	}
}

/* An id is 1-64 of [A-Za-z0-9_-]: it goes into id="" and aria-labelledby. */
static bool id_ok(const char *id)
{
	size_t n = id ? strlen(id) : 0;
	return n > 0 && n <= 64 && str_is_b64url(id, n);
}

/* The smallest 1, 2 or 5 × 10^k at or above @v (at least 1). */
static uint64_t nice_ceil(uint64_t v)
{
	uint64_t p = 1;
	for (;;) {
		if (v <= p)
			return p;
		if (p <= UINT64_MAX / 2 && v <= 2 * p)
			return 2 * p;
		if (p <= UINT64_MAX / 5 && v <= 5 * p)
			return 5 * p;
		if (p > UINT64_MAX / 10)
			return UINT64_MAX;
		p *= 10;
	}
}

/* @v of @max as pixels of @span, rounded; a non-zero value is at least 1. */
static int scale(uint64_t v, uint64_t max, int span)
{
	if (v == 0 || max == 0)
		return 0;
	int px = (int)((double)v / (double)max * span + 0.5);
	if (px < 1)
		px = 1;
	return px > span ? span : px;
}

/* The series as drawn: at most CHART_MAX_SERIES, the rest summed into
 * "other" (whose values live in @other, nbuckets long, caller-freed). */
typedef struct drawn {
	chart_series s[CHART_MAX_SERIES];
	size_t n;
	uint64_t *other;
} drawn;

static int fold_series(const chart_bars *c, drawn *d)
{
	memset(d, 0, sizeof *d);
	size_t keep = c->nseries;
	if (keep > CHART_MAX_SERIES) {
		keep = CHART_MAX_SERIES - 1;
		d->other = calloc(c->nbuckets ? c->nbuckets : 1, sizeof *d->other);
		if (!d->other)
			return TH_ENOMEM;
		for (size_t k = keep; k < c->nseries; k++) {
			for (size_t i = 0; i < c->nbuckets; i++)
				d->other[i] = add_sat(d->other[i], c->series[k].values[i]);
		}
	}
	for (size_t k = 0; k < keep; k++)
		d->s[d->n++] = c->series[k];
	if (d->other)
		d->s[d->n++] = (chart_series){"other", d->other};
	return 0;
}

static uint64_t bucket_total(const drawn *d, size_t i)
{
	uint64_t t = 0;
	for (size_t k = 0; k < d->n; k++)
		t = add_sat(t, d->s[k].values[i]);
	return t;
}

/* Axes, y ticks (0, about half, max) with grid lines, the axis labels. */
static void bars_axes(buf *b, const chart_bars *c, uint64_t ymax)
{
	int x0 = PLOT_X, y0 = PLOT_Y + PLOT_H;
	uint64_t ticks[3] = {0, ymax / 2, ymax};
	for (int t = 0; t < 3; t++) {
		if (t == 1 && ticks[1] == 0)
			continue; /* ymax 1: no integer half */
		/* placed where that value is, also when ymax is odd (5 → 2) */
		int y = y0 - scale(ticks[t], ymax, PLOT_H);
		buf_printf(
		    b,
		    "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#ddd\"/>"
		    "<text x=\"%d\" y=\"%d\" text-anchor=\"end\" font-size=\"11\">%llu</text>\n",
		    x0, y, x0 + PLOT_W, y, x0 - 4, y + 4, (unsigned long long)ticks[t]);
	}
	buf_printf(b,
	           "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#333\"/>"
	           "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#333\"/>\n",
	           x0, PLOT_Y, x0, y0, x0, y0, x0 + PLOT_W, y0);
	buf_printf(b, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\" font-size=\"12\">",
	           x0 + PLOT_W / 2, y0 + 34);
	put_text(b, c->x_label, 60);
	buf_printf(b,
	           "</text>\n<text x=\"%d\" y=\"%d\" transform=\"rotate(-90 %d %d)\" "
	           "text-anchor=\"middle\" font-size=\"12\">",
	           14, PLOT_Y + PLOT_H / 2, 14, PLOT_Y + PLOT_H / 2);
	put_text(b, c->y_label, 40);
	buf_puts(b, "</text>\n");
}

/* One bar per bucket: a <g> with a rect per non-zero segment, each titled. */
static void bars_rects(buf *b, const chart_bars *c, const drawn *d, uint64_t ymax)
{
	size_t step = (c->nbuckets + MAX_X_LABELS - 1) / MAX_X_LABELS;
	for (size_t i = 0; i < c->nbuckets; i++) {
		int x = PLOT_X + (int)((size_t)PLOT_W * i / c->nbuckets);
		int next = PLOT_X + (int)((size_t)PLOT_W * (i + 1) / c->nbuckets);
		int w = next - x > 2 ? next - x - 1 : (next - x > 0 ? next - x : 1);
		const char *label = c->bucket_labels ? c->bucket_labels[i] : NULL;
		buf_puts(b, "<g>");
		int top = PLOT_Y + PLOT_H;
		for (size_t k = 0; k < d->n; k++) {
			uint64_t v = d->s[k].values[i];
			int h = scale(v, ymax, PLOT_H);
			if (top - h < PLOT_Y)
				h = top - PLOT_Y; /* 1-pixel minimums piled up: stay inside */
			if (h <= 0)
				continue;
			top -= h;
			buf_printf(b,
			           "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"%s\">"
			           "<title>",
			           x, top, w, h, palette[k]);
			put_text(b, d->s[k].name, CHART_TEXT_MAX);
			buf_printf(b, ": %llu (", (unsigned long long)v);
			put_text(b, label, 40);
			buf_puts(b, ")</title></rect>");
		}
		buf_puts(b, "</g>\n");
		if (label && i % step == 0) {
			buf_printf(b,
			           "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\" "
			           "font-size=\"10\">",
			           x + w / 2, PLOT_Y + PLOT_H + 14);
			put_text(b, label, LABEL_CHARS);
			buf_puts(b, "</text>\n");
		}
	}
}

static void bars_legend(buf *b, const drawn *d, int y)
{
	for (size_t k = 0; k < d->n; k++) {
		int x = PLOT_X + (int)(k % LEGEND_COLS) * (PLOT_W / LEGEND_COLS);
		int yy = y + (int)(k / LEGEND_COLS) * LEGEND_ROW_H;
		buf_printf(b,
		           "<rect x=\"%d\" y=\"%d\" width=\"10\" height=\"10\" fill=\"%s\"/>"
		           "<text x=\"%d\" y=\"%d\" font-size=\"11\">",
		           x, yy, palette[k], x + 14, yy + 9);
		put_text(b, d->s[k].name, LEGEND_CHARS);
		buf_puts(b, "</text>\n");
	}
}

/* The same numbers as a table: a row per bucket, a column per series. */
static void bars_table(buf *b, const chart_bars *c, const drawn *d)
{
	buf_puts(b, "<table class=\"chart-table\"><caption>");
	put_text(b, c->title, CHART_TEXT_MAX);
	buf_puts(b, "</caption>\n<thead><tr><th scope=\"col\">");
	put_text(b, c->x_label, CHART_TEXT_MAX);
	buf_puts(b, "</th>");
	for (size_t k = 0; k < d->n; k++) {
		buf_puts(b, "<th scope=\"col\">");
		put_text(b, d->s[k].name, CHART_TEXT_MAX);
		buf_puts(b, "</th>");
	}
	buf_puts(b, "<th scope=\"col\">total</th></tr></thead>\n<tbody>\n");
	if (c->nbuckets == 0)
		buf_printf(b, "<tr><td colspan=\"%zu\">no data</td></tr>\n", d->n + 2);
	for (size_t i = 0; i < c->nbuckets; i++) {
		buf_puts(b, "<tr><th scope=\"row\">");
		put_text(b, c->bucket_labels ? c->bucket_labels[i] : NULL, CHART_TEXT_MAX);
		buf_puts(b, "</th>");
		for (size_t k = 0; k < d->n; k++)
			buf_printf(b, "<td>%llu</td>", (unsigned long long)d->s[k].values[i]);
		buf_printf(b, "<td>%llu</td></tr>\n", (unsigned long long)bucket_total(d, i));
	}
	buf_puts(b, "</tbody></table>\n");
}

int chart_bars_render(buf *out, const chart_bars *c)
{
	if (!id_ok(c->id) || c->nbuckets > CHART_MAX_BUCKETS || (c->nseries && !c->series))
		return TH_EINVAL;
	for (size_t k = 0; k < c->nseries; k++) {
		if (c->nbuckets && !c->series[k].values)
			return TH_EINVAL;
	}
	drawn d;
	int rc = fold_series(c, &d);
	if (rc)
		return rc;
	uint64_t peak = 0, sum = 0;
	for (size_t i = 0; i < c->nbuckets; i++) {
		uint64_t t = bucket_total(&d, i);
		peak = t > peak ? t : peak;
		sum = add_sat(sum, t);
	}
	uint64_t ymax = nice_ceil(peak);
	int legend_rows = (int)((d.n + LEGEND_COLS - 1) / LEGEND_COLS);
	int legend_y = PLOT_Y + PLOT_H + 48;
	int height = legend_y + legend_rows * LEGEND_ROW_H + 4;

	buf_puts(out, "<figure class=\"chart bars\" id=\"");
	buf_puts(out, c->id);
	buf_puts(out, "\"><figcaption>");
	put_text(out, c->title, CHART_TEXT_MAX);
	buf_printf(out,
	           "</figcaption>\n<svg xmlns=\"http://www.w3.org/2000/svg\" role=\"img\" "
	           "aria-labelledby=\"%s-title %s-desc\" viewBox=\"0 0 %d %d\" width=\"%d\" "
	           "height=\"%d\" font-family=\"sans-serif\">\n<title id=\"%s-title\">",
	           c->id, c->id, BAR_W, height, BAR_W, height, c->id);
	put_text(out, c->title, CHART_TEXT_MAX);
	buf_printf(out, "</title>\n<desc id=\"%s-desc\">", c->id);
	if (sum == 0)
		buf_puts(out, "No data in this period.");
	else
		buf_printf(out,
		           "%zu bars, %llu in all, at most %llu in one; the table below has "
		           "every number.",
		           c->nbuckets, (unsigned long long)sum, (unsigned long long)peak);
	buf_puts(out, "</desc>\n");
	bars_axes(out, c, ymax);
	bars_rects(out, c, &d, ymax);
	if (sum == 0)
		buf_printf(out,
		           "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\" font-size=\"14\" "
		           "fill=\"#666\">no data</text>\n",
		           PLOT_X + PLOT_W / 2, PLOT_Y + PLOT_H / 2);
	bars_legend(out, &d, legend_y);
	buf_puts(out, "</svg>\n");
	bars_table(out, c, &d);
	buf_puts(out, "</figure>\n");
	free(d.other);
	return buf_status(out);
}

int chart_spark_render(buf *out, const chart_spark *s)
{
	if (!id_ok(s->id) || s->n > CHART_MAX_BUCKETS || (s->n && !s->values))
		return TH_EINVAL;
	uint64_t peak = 0, sum = 0;
	size_t at = 0;
	for (size_t i = 0; i < s->n; i++) {
		if (s->values[i] > peak) {
			peak = s->values[i];
			at = i;
		}
		sum = add_sat(sum, s->values[i]);
	}
	buf_printf(out, "<figure class=\"chart spark\" id=\"%s\">\n", s->id);
	buf_printf(out,
	           "<svg xmlns=\"http://www.w3.org/2000/svg\" role=\"img\" "
	           "aria-labelledby=\"%s-title\" viewBox=\"0 0 %d %d\" width=\"%d\" "
	           "height=\"%d\">\n<title id=\"%s-title\">",
	           s->id, SPARK_W, SPARK_H, SPARK_W, SPARK_H, s->id);
	put_text(out, s->title, CHART_TEXT_MAX);
	if (sum == 0) {
		buf_puts(out, ": no data</title>\n");
	} else {
		buf_printf(out, ": %llu in all, at most %llu", (unsigned long long)sum,
		           (unsigned long long)peak);
		if (s->labels) {
			buf_puts(out, " (");
			put_text(out, s->labels[at], 40);
			buf_puts(out, ")");
		}
		buf_puts(out, "</title>\n");
	}
	/* y grows downwards: 1 px margin top and bottom */
	int span = SPARK_H - 2;
	if (s->n < 2) {
		int y = SPARK_H - 1 - (s->n ? scale(s->values[0], nice_ceil(peak), span) : 0);
		buf_printf(out,
		           "<line x1=\"0\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#0072b2\"/>\n", y,
		           SPARK_W, y);
	} else {
		buf_puts(out, "<polyline fill=\"none\" stroke=\"#0072b2\" stroke-width=\"1.5\" "
		              "points=\"");
		for (size_t i = 0; i < s->n; i++) {
			int x = (int)((size_t)(SPARK_W - 1) * i / (s->n - 1));
			int y = SPARK_H - 1 - scale(s->values[i], peak, span);
			buf_printf(out, "%s%d,%d", i ? " " : "", x, y);
		}
		buf_puts(out, "\"/>\n");
	}
	buf_puts(out, "</svg>\n<table class=\"chart-table\"><caption>");
	put_text(out, s->title, CHART_TEXT_MAX);
	buf_puts(out, "</caption>\n");
	if (s->labels && s->n) {
		buf_puts(out, "<thead><tr>");
		for (size_t i = 0; i < s->n; i++) {
			buf_puts(out, "<th scope=\"col\">");
			put_text(out, s->labels[i], CHART_TEXT_MAX);
			buf_puts(out, "</th>");
		}
		buf_puts(out, "</tr></thead>");
	}
	buf_puts(out, "<tbody><tr>");
	if (s->n == 0)
		buf_puts(out, "<td>no data</td>");
	for (size_t i = 0; i < s->n; i++)
		buf_printf(out, "<td>%llu</td>", (unsigned long long)s->values[i]);
	buf_puts(out, "</tr></tbody></table>\n</figure>\n");
	return buf_status(out);
}
