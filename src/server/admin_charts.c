/* SPDX-License-Identifier: MIT */
/*
 * admin_charts.c — the admin's charts (see chart.h for the markup): events
 * per hour for 24 hours and per day for 30 days, stacked by action type, on
 * the dashboard; a sparkline per webhook and the silence rule on the
 * webhooks page. The numbers come from the hourly event rollup through
 * svc_activity_read(), never from a scan of the events.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "server/admin.h"
#include "server/chart.h"
#include "service/activity.h"
#include "util/log.h"

#define LABEL_MAX 16

/* "14:00" (hourly) or "12-01" (daily) for bucket @i of @a, UTC. */
static void bucket_label(const svc_activity *a, size_t i, char *out, size_t cap)
{
	time_t secs = (time_t)((a->first_hour + (int64_t)i * a->bucket_hours) * 3600);
	struct tm tm;
	if (!gmtime_r(&secs, &tm) ||
	    strftime(out, cap, a->bucket_hours == 1 ? "%H:00" : "%m-%d", &tm) == 0)
		str_copy(out, cap, "?");
}

/* Render @a as a stacked bar chart by action type into @b. */
static int activity_bars(buf *b, const svc_activity *a, const char *id, const char *title,
                         const char *x_label)
{
	char(*labels)[LABEL_MAX] = calloc(a->nbuckets ? a->nbuckets : 1, sizeof *labels);
	const char **lp = calloc(a->nbuckets ? a->nbuckets : 1, sizeof *lp);
	chart_series *ss = calloc(a->ntypes ? a->ntypes : 1, sizeof *ss);
	int ret = TH_ENOMEM;
	if (labels && lp && ss) {
		for (size_t i = 0; i < a->nbuckets; i++) {
			bucket_label(a, i, labels[i], LABEL_MAX);
			lp[i] = labels[i];
		}
		for (size_t i = 0; i < a->ntypes; i++)
			ss[i] = (chart_series){a->types[i].name, a->types[i].values};
		chart_bars c = {id, title, x_label, "events", lp, a->nbuckets, ss, a->ntypes};
		ret = chart_bars_render(b, &c);
	}
	free(labels);
	free(lp);
	free(ss);
	return ret;
}

/* The dashboard's activity section: events per hour (24 h) and per day (30
 * days), stacked by the top action types. An error becomes a notice. */
void admin_activity_section(admin_req *r, buf *b)
{
	th_error err = {0, {0}};
	int64_t now = time_now_ms();
	svc_activity day = {0}, month = {0};
	buf_puts(b, "<section aria-labelledby=h-activity><h2 id=h-activity>Activity</h2>\n");
	if (svc_activity_read(r->sc, now, 1, 24, &day, &err) != 0 ||
	    svc_activity_read(r->sc, now, 24, 30, &month, &err) != 0) {
		admin_notice(b, "error", err.msg);
	} else if (activity_bars(b, &day, "ev-24h", "Events received per hour, last 24 hours",
	                         "hour (UTC)") != 0 ||
	           activity_bars(b, &month, "ev-30d", "Events received per day, last 30 days",
	                         "day (UTC)") != 0) {
		log_warn("admin", "rendering the activity charts failed");
		admin_notice(b, "error", "The activity charts could not be drawn.");
	}
	buf_puts(b, "</section>\n");
	svc_activity_clear(&day);
	svc_activity_clear(&month);
}

/* The webhooks page reads 7 days of hours once: the sparklines show the
 * last 24, the silence rule counts all 168. */
#define WEEK_HOURS 168
#define SPARK_HOURS 24

int admin_webhook_activity_read(admin_req *r, svc_activity *a, th_error *err)
{
	return svc_activity_read(r->sc, time_now_ms(), 1, WEEK_HOURS, a, err);
}

/* "N minutes ago" (or hours, days) for an age of @ms. */
static void put_age(buf *b, int64_t ms)
{
	int64_t min = ms > 0 ? ms / 60000 : 0;
	if (min < 120)
		buf_printf(b, "%lld minute%s ago", (long long)min, min == 1 ? "" : "s");
	else if (min < 48 * 60)
		buf_printf(b, "%lld hours ago", (long long)(min / 60));
	else
		buf_printf(b, "%lld days ago", (long long)(min / 1440));
}

void admin_webhook_activity_cell(buf *b, const svc_activity *a, const webhook *w, size_t row)
{
	int64_t now = time_now_ms();
	static const uint64_t zeros[SPARK_HOURS];
	const svc_activity_series *s = a ? svc_activity_webhook(a, w->id) : NULL;
	const uint64_t *last24 = zeros;
	uint64_t week = 0;
	if (s && a->nbuckets >= SPARK_HOURS) {
		last24 = s->values + (a->nbuckets - SPARK_HOURS);
		week = s->total;
	}
	char id[32], title[96];
	str_printf(id, sizeof id, "spark-%zu", row);
	str_printf(title, sizeof title, "Events per hour, last 24 hours");
	chart_spark sp = {id, title, last24, NULL, SPARK_HOURS};
	if (a && chart_spark_render(b, &sp) != 0)
		log_warn("admin", "rendering a sparkline failed");
	buf_puts(b, "<br>");
	if (w->last_event_at <= 0) {
		buf_puts(b, "<span class=muted>no event yet</span>");
		return;
	}
	int64_t limit = 0;
	bool silent = svc_activity_silent(week, w->last_event_at, now, &limit);
	buf_puts(b, silent ? "<span class=silent>" : "<span>");
	buf_puts(b, "last event ");
	put_age(b, now - w->last_event_at);
	if (silent) {
		int64_t min = limit / 60000;
		if (min < 120)
			buf_printf(b, " — silent for longer than usual (over %lld min)",
			           (long long)min);
		else
			buf_printf(b, " — silent for longer than usual (over %lld h)",
			           (long long)(min / 60));
	}
	buf_puts(b, "</span>");
}
