/* SPDX-License-Identifier: MIT */
/*
 * pg_pipe.c — libpq's pipeline mode for the PostgreSQL store (pg_int.h's
 * pq_pipe_*): what the ingest batch (pg_batch.c) sends in one round trip or two;
 * and the statements of the hot paths prepared once per connection (pq_prepare).
 */
#include <libpq-events.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/pg_int.h"

/* ---- prepared statements ---------------------------------------------------------------- */

/*
 * Text statements (PQexecParams) are parsed, analysed and planned by the
 * server every time: for an ingest batch's multi-row INSERT with its CTEs,
 * and for the dispatcher's claim (which runs after commits), that was
 * more server CPU than the inserts themselves. The statements of pg_int.h's
 * enum pq_stmt are prepared on first use instead, once per connection, and
 * then run by name. Which ones a connection has is kept with the PGconn
 * (libpq's instance data of the event procedure below), so it lives and dies
 * with the connection and a PQreset (a new server session, which has none)
 * clears it.
 */

typedef struct prepared {
	unsigned char done[PQS_COUNT];
} prepared;

static int prepared_event(PGEventId id, void *info, void *pass)
{
	(void)pass;
	if (id == PGEVT_REGISTER) {
		PGconn *c = ((PGEventRegister *)info)->conn;
		prepared *p = calloc(1, sizeof *p);
		return p && PQsetInstanceData(c, prepared_event, p);
	}
	if (id == PGEVT_CONNRESET) {
		prepared *p = PQinstanceData(((PGEventConnReset *)info)->conn, prepared_event);
		if (p)
			memset(p, 0, sizeof *p);
	} else if (id == PGEVT_CONNDESTROY) {
		free(PQinstanceData(((PGEventConnDestroy *)info)->conn, prepared_event));
	}
	return 1;
}

int pq_prepared_attach(PGconn *c)
{
	return PQregisterEventProc(c, prepared_event, "trellohook prepared statements", NULL)
	           ? 0
	           : TH_ENOMEM;
}

void pq_stmt_name(int id, char out[16])
{
	(void)snprintf(out, 16, "th_%d", id);
}

bool pq_is_prepared(pgs *s, PGconn *c, int id)
{
	(void)s;
	prepared *p = PQinstanceData(c, prepared_event);
	return p && id > PQS_NONE && id < PQS_COUNT && p->done[id];
}

int pq_prepare(pgs *s, PGconn *c, int id, const char *sql, th_error *err)
{
	prepared *p = PQinstanceData(c, prepared_event);
	if (!p || id <= PQS_NONE || id >= PQS_COUNT || p->done[id])
		return 0; /* not one to prepare (it runs as text), or done */
	char name[16];
	pq_stmt_name(id, name);
	PGresult *r = PQprepare(c, name, sql, 0, NULL);
	int ret = 0;
	if (PQresultStatus(r) == PGRES_COMMAND_OK)
		p->done[id] = 1;
	else
		ret = pg_fail(s, c, r, "preparing a statement", err);
	PQclear(r);
	return ret;
}

void pq_prepared_lost(PGconn *c, const PGresult *r)
{
	const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
	prepared *p = PQinstanceData(c, prepared_event);
	if (p && state && !strcmp(state, "26000")) /* invalid_sql_statement_name */
		memset(p, 0, sizeof *p);
}

PGresult *pq_stmt(pgs *s, PGconn *c, int id, const char *sql, pparams *p, const char *what,
                  char state[6], th_error *err)
{
	if (state)
		state[0] = '\0';
	if (pq_prepare(s, c, id, sql, err) != 0)
		return NULL;
	char name[16];
	pq_stmt_name(id, name);
	return pq_named(s, c, pq_is_prepared(s, c, id) ? name : NULL, sql, p, what, state, err);
}

/* ---- pipeline mode ---------------------------------------------------------------------- */

/*
 * libpq's pipeline mode (libpq 14+; any server with the extended protocol):
 * statements are sent one after another without waiting for each answer,
 * and the answers are read afterwards in the same order, so a batch of
 * statements costs one round trip to the server instead of one each. A
 * PQpipelineSync marks where the server reports back (and, outside an
 * explicit transaction, commits); after an error the server skips
 * everything up to the next sync, so pq_pipe_end() reads on to the last one.
 * Blocking connections are fine here: while libpq cannot send, it reads what
 * the server answered into its input buffer, so neither side waits for the
 * other forever.
 */

int pq_pipe_begin(pgs *s, pq_pipe *pl, PGconn *c, th_error *err)
{
	*pl = (pq_pipe){.c = c};
	if (PQenterPipelineMode(c) != 1)
		return pg_fail(s, c, NULL, "starting a pipeline", err);
	pl->active = true;
	return 0;
}

/* Queue the statement prepared as @name (NULL: @sql as text) with @p (kept
 * valid until its result was read). */
static int pipe_send(pgs *s, pq_pipe *pl, const char *name, const char *sql, pparams *p,
                     const char *what, th_error *err)
{
	pq_args a;
	int ret = pq_args_of(p, what, &a, err);
	if (ret != 0)
		return ret;
	if (!(name ? PQsendQueryPrepared(pl->c, name, a.n, a.v, a.len, a.fmt, 0)
	           : PQsendQueryParams(pl->c, sql, a.n, NULL, a.v, a.len, a.fmt, 0)))
		return pg_fail(s, pl->c, NULL, what, err);
	pl->queued++;
	return 0;
}

int pq_pipe_send(pgs *s, pq_pipe *pl, const char *sql, pparams *p, const char *what, th_error *err)
{
	return pipe_send(s, pl, NULL, sql, p, what, err);
}

int pq_pipe_send_stmt(pgs *s, pq_pipe *pl, int id, const char *sql, pparams *p, const char *what,
                      th_error *err)
{
	char name[16];
	pq_stmt_name(id, name);
	return pipe_send(s, pl, pq_is_prepared(s, pl->c, id) ? name : NULL, sql, p, what, err);
}

/* A sync point after what was queued; sends everything. */
int pq_pipe_sync(pgs *s, pq_pipe *pl, th_error *err)
{
	if (PQpipelineSync(pl->c) != 1)
		return pg_fail(s, pl->c, NULL, "sending to PostgreSQL", err);
	pl->syncs++;
	pl->queued = 0;
	return 0;
}

/* Keep the SQLSTATE of @r (a failed statement's answer) unless one is kept. */
static void pipe_note_state(pq_pipe *pl, const PGresult *r)
{
	const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
	if (state && !pl->sqlstate[0])
		str_copy(pl->sqlstate, sizeof pl->sqlstate, state);
}

/* The answer to the next queued statement (PQclear it), or NULL with @err. */
PGresult *pq_pipe_result(pgs *s, pq_pipe *pl, const char *what, th_error *err)
{
	PGresult *r = PQgetResult(pl->c);
	ExecStatusType st = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
	if (r && st != PGRES_PIPELINE_SYNC) {
		PGresult *end = PQgetResult(pl->c); /* NULL: the end of this statement's answer */
		PQclear(end);
	}
	if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK)
		return r;
	if (st == PGRES_PIPELINE_SYNC)
		pl->syncs--; /* out of step: a statement's answer was expected */
	if (st == PGRES_PIPELINE_ABORTED) {
		th_err(err, TH_ESTORE, "%s: not run, an earlier statement failed", what);
	} else {
		pipe_note_state(pl, r);
		pq_prepared_lost(pl->c, r);
		pg_fail(s, pl->c, r, what, err);
	}
	PQclear(r);
	return NULL;
}

/* Run a queued statement's answer that is not needed: 0 or the error code. */
int pq_pipe_done(pgs *s, pq_pipe *pl, const char *what, th_error *err)
{
	PGresult *r = pq_pipe_result(s, pl, what, err);
	if (!r)
		return err ? err->code : TH_ESTORE;
	PQclear(r);
	return 0;
}

/* Read the next sync point: 0, or an error when something else came. */
int pq_pipe_synced(pgs *s, pq_pipe *pl, th_error *err)
{
	PGresult *r = PQgetResult(pl->c);
	ExecStatusType st = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
	int ret = 0;
	if (st == PGRES_PIPELINE_SYNC) {
		pl->syncs--;
	} else {
		pipe_note_state(pl, r);
		ret = pg_fail(s, pl->c, r, "reading PostgreSQL's answers", err);
	}
	PQclear(r);
	return ret;
}

/* Leave pipeline mode. After an error, first sync what is still queued and
 * read (and drop) every answer up to the last sync point; a connection that
 * cannot leave pipeline mode is reset, so the pool never hands out one in
 * the middle of a pipeline. */
void pq_pipe_end(pq_pipe *pl)
{
	if (!pl->active)
		return;
	pl->active = false;
	if (pl->queued && PQstatus(pl->c) == CONNECTION_OK && PQpipelineSync(pl->c) == 1)
		pl->syncs++;
	int nulls = 0;
	while (pl->syncs > 0 && PQstatus(pl->c) == CONNECTION_OK && nulls < 4096) {
		PGresult *r = PQgetResult(pl->c);
		if (!r) {
			nulls++; /* the end of one statement's answer */
			continue;
		}
		if (PQresultStatus(r) == PGRES_PIPELINE_SYNC)
			pl->syncs--;
		PQclear(r);
	}
	if (PQexitPipelineMode(pl->c) != 1 && PQstatus(pl->c) == CONNECTION_OK)
		pq_reset(pl->c);
}
