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
#include "service/service.h"
#include "store/store.h"
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
	/* by type only: the dashboard shows no per-webhook split */
	if (svc_activity_read(r->sc, now, 1, 24, false, &day, &err) != 0 ||
	    svc_activity_read(r->sc, now, 24, 30, false, &month, &err) != 0) {
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
	return svc_activity_read(r->sc, time_now_ms(), 1, WEEK_HOURS, true, a, err);
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

/* A run time for people: "850 µs", "12 ms", "3.4 s"; "—" when unknown. */
static void put_run(buf *b, int64_t us, bool open_ended)
{
	if (us < 0)
		buf_puts(b, "—");
	else if (us < 1000)
		buf_printf(b, "%lld µs", (long long)us);
	else if (us < 10000000)
		buf_printf(b, "%s%lld ms", open_ended ? "over " : "", (long long)(us / 1000));
	else
		buf_printf(b, "%s%lld s", open_ended ? "over " : "", (long long)(us / 1000000));
}

/* The handlers' table: attempts, success rate, p50/p95 over the window. */
static void handlers_table(admin_req *r, buf *b, const svc_delivery_activity *a)
{
	if (a->nhandlers == 0) {
		buf_puts(b, "<p class=muted>No delivery attempts in the last 24 hours.</p>\n");
		return;
	}
	handler *hs = NULL;
	size_t nh = 0;
	th_error err = {0, {0}};
	if (svc_handler_list(r->sc, &hs, &nh, &err))
		nh = 0; /* the kinds are a nicety; the numbers stand alone */
	buf_puts(b, "<div class=table-wrap><table id=handler-stats>\n<caption>Handlers, last 24 "
	            "hours</caption>\n<thead><tr><th scope=col>Handler</th><th scope=col>Kind</th>"
	            "<th scope=col>Attempts</th><th scope=col>Success</th><th scope=col>Failed</th>"
	            "<th scope=col>Dead</th><th scope=col>p50 run time</th>"
	            "<th scope=col>p95 run time</th></tr></thead>\n<tbody>\n");
	for (size_t i = 0; i < a->nhandlers; i++) {
		const svc_handler_stats *h = &a->handlers[i];
		const char *kind = "(removed)";
		for (size_t j = 0; j < nh; j++)
			if (str_eq(hs[j].id, h->handler_id))
				kind = handler_kind_name(hs[j].kind);
		uint64_t all = h->done + h->failed + h->dead;
		buf_puts(b, "<tr><td class=mono>");
		admin_esc(b, h->handler_id);
		buf_puts(b, "</td><td>");
		admin_esc(b, kind);
		/* one decimal without floating-point formatting (no locale) */
		uint64_t permille = all ? (h->done * 1000 + all / 2) / all : 0;
		buf_printf(b,
		           "</td><td>%llu</td><td>%llu.%llu %%</td><td>%llu</td><td>%llu</td><td>",
		           (unsigned long long)all, (unsigned long long)(permille / 10),
		           (unsigned long long)(permille % 10), (unsigned long long)h->failed,
		           (unsigned long long)h->dead);
		bool top = h->runs[SVC_RUN_BUCKETS - 1] > 0;
		put_run(b, h->p50_us,
		        top && h->p50_us == store_run_bucket_max_us[SVC_RUN_BUCKETS - 2]);
		buf_puts(b, "</td><td>");
		put_run(b, h->p95_us,
		        top && h->p95_us == store_run_bucket_max_us[SVC_RUN_BUCKETS - 2]);
		buf_puts(b, "</td></tr>\n");
	}
	buf_puts(b, "</tbody></table></div>\n<p class=\"muted small\">Run times are estimated "
	            "from buckets (1, 2, 5, 10, 25 ms … 1 min); attempts recorded before "
	            "schema 9 count without one.</p>\n");
	handler_list_free(hs, nh);
}

/* The dashboard's deliveries section: attempts per hour by outcome (24 h)
 * and the handlers' table, from the hourly delivery rollup. */
void admin_deliveries_section(admin_req *r, buf *b)
{
	th_error err = {0, {0}};
	svc_delivery_activity a = {0};
	buf_puts(b, "<section aria-labelledby=h-deliveries><h2 id=h-deliveries>Deliveries</h2>\n");
	if (svc_delivery_activity_read(r->sc, time_now_ms(), 24, &a, &err) != 0) {
		admin_notice(b, "error", err.msg);
		goto out;
	}
	char(*labels)[LABEL_MAX] = calloc(a.nbuckets, sizeof *labels);
	const char **lp = calloc(a.nbuckets, sizeof *lp);
	int ret = TH_ENOMEM;
	if (labels && lp) {
		svc_activity hours = {.first_hour = a.first_hour, .bucket_hours = 1};
		for (size_t i = 0; i < a.nbuckets; i++) {
			bucket_label(&hours, i, labels[i], LABEL_MAX);
			lp[i] = labels[i];
		}
		chart_series ss[3] = {{"done", a.done}, {"failed", a.failed}, {"dead", a.dead}};
		chart_bars c = {
		    "dl-24h",     "Delivery attempts per hour by outcome, last 24 hours",
		    "hour (UTC)", "attempts",
		    lp,           a.nbuckets,
		    ss,           3};
		ret = chart_bars_render(b, &c);
	}
	free(labels);
	free(lp);
	if (ret != 0) {
		log_warn("admin", "rendering the deliveries chart failed");
		admin_notice(b, "error", "The deliveries chart could not be drawn.");
	}
	handlers_table(r, b, &a);
out:
	buf_puts(b, "</section>\n");
	svc_delivery_activity_clear(&a);
}
