/* SPDX-License-Identifier: MIT */
/* progress.c — a status line on a terminal's stderr; see progress.h. */
#include <string.h>
#include <unistd.h>

#include "cli/progress.h"
#include "util/util.h"

void cli_progress_init(cli_progress *p, FILE *f, const char *what)
{
	memset(p, 0, sizeof *p);
	p->f = f;
	p->on = f && isatty(fileno(f));
	str_copy(p->what, sizeof p->what, what ? what : "");
	p->t0_ms = time_mono_ms();
}

/* "42s", "3m05s", "2h07m". */
static void format_secs(char *out, size_t outsz, uint64_t s)
{
	if (s < 60)
		str_printf(out, outsz, "%llus", (unsigned long long)s);
	else if (s < 3600)
		str_printf(out, outsz, "%llum%02llus", (unsigned long long)(s / 60),
		           (unsigned long long)(s % 60));
	else
		str_printf(out, outsz, "%lluh%02llum", (unsigned long long)(s / 3600),
		           (unsigned long long)(s / 60 % 60));
}

void cli_progress_format(char *out, size_t outsz, const char *what, uint64_t done, uint64_t total,
                         int64_t elapsed_ms)
{
	char pct[16] = "", rate[32] = "", eta[32] = "";
	if (total)
		str_printf(pct, sizeof pct, "  %3u%%",
		           (unsigned)(done >= total ? 100 : done * 100 / total));
	if (done && elapsed_ms > 0) {
		double r = (double)done * 1000.0 / (double)elapsed_ms;
		str_printf(rate, sizeof rate, r < 10 ? "  %.1f/s" : "  %.0f/s", r);
		if (total > done) {
			char t[16];
			/* what is left at the rate so far, rounded up */
			uint64_t left_ms = (uint64_t)((double)(total - done) * 1000.0 / r);
			format_secs(t, sizeof t, (left_ms + 999) / 1000);
			str_printf(eta, sizeof eta, "  ETA %s", t);
		}
	}
	if (total)
		str_printf(out, outsz, "%s %llu/%llu%s%s%s", what, (unsigned long long)done,
		           (unsigned long long)total, pct, rate, eta);
	else
		str_printf(out, outsz, "%s %llu%s", what, (unsigned long long)done, rate);
}

void cli_progress_set(cli_progress *p, uint64_t done, uint64_t total)
{
	int64_t now = time_mono_ms();
	if (done < p->done || total != p->total)
		p->t0_ms = now; /* a new count: its own rate */
	p->done = done;
	p->total = total;
	if (!p->on)
		return;
	bool last = total && done >= total;
	if (p->last_ms && now - p->last_ms < CLI_PROGRESS_REDRAW_MS && !last)
		return;
	char line[256];
	cli_progress_format(line, sizeof line, p->what, done, total, now - p->t0_ms);
	/* back to the line's start, draw, erase what a longer line left */
	fprintf(p->f, "\r%s\033[K", line);
	fflush(p->f);
	p->drawn = true;
	p->last_ms = now;
}

void cli_progress_end(cli_progress *p)
{
	if (p->on && p->drawn) {
		fputs("\r\033[K", p->f);
		fflush(p->f);
	}
	p->drawn = false;
}
