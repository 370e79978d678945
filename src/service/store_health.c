/* SPDX-License-Identifier: MIT */
/*
 * store_health.c — can the store commit? The receive path's writer reports
 * every group commit here (svc_note_commit); /healthz asks svc_store_health,
 * which answers from that outcome and, when the receiver has been idle, from
 * a small write probe of its own. The state lives in the process's metrics.
 */
#include "service/service.h"

static void note(metrics *m, int64_t now_ms, bool failed, const char *why)
{
	if (failed) {
		pthread_mutex_lock(&m->commit_lock);
		str_copy(m->commit_error, sizeof m->commit_error, why ? why : "unknown error");
		pthread_mutex_unlock(&m->commit_lock);
	}
	atomic_store(&m->commit_failing, failed);
	atomic_store(&m->commit_last_ms, now_ms > 0 ? now_ms : 1);
}

void svc_note_commit_at(svc_ctx *sc, int rc, const th_error *err, int64_t now_ms)
{
	note(sc->m, now_ms, rc != 0, err ? err->msg : NULL);
}

void svc_note_commit(svc_ctx *sc, int rc, const th_error *err)
{
	svc_note_commit_at(sc, rc, err, time_mono_ms());
}

int svc_store_health(svc_ctx *sc, int64_t now_ms, th_error *err)
{
	metrics *m = sc->m;
	th_error e = {0, {0}};
	if (store_ping(sc->st, &e))
		return th_err(err, TH_EUNAVAIL, "store does not answer: %s", e.msg);
	int64_t last = atomic_load(&m->commit_last_ms);
	int64_t probed = atomic_load(&m->probe_last_ms);
	/* idle: no outcome lately (or none yet); one caller wins the probe */
	if ((!last || now_ms - last >= SVC_PROBE_IDLE_MS) &&
	    (!probed || now_ms - probed >= SVC_PROBE_IDLE_MS) &&
	    atomic_compare_exchange_strong(&m->probe_last_ms, &probed, now_ms > 0 ? now_ms : 1)) {
		int rc = store_probe_write(sc->st, &e);
		note(m, now_ms, rc != 0, e.msg);
	}
	if (atomic_load(&m->commit_failing)) {
		char why[sizeof m->commit_error];
		pthread_mutex_lock(&m->commit_lock);
		str_copy(why, sizeof why, m->commit_error);
		pthread_mutex_unlock(&m->commit_lock);
		return th_err(err, TH_EUNAVAIL, "store cannot commit: %s", why);
	}
	return 0;
}
