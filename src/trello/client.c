/* SPDX-License-Identifier: MIT */
/*
 * client.c — the typed Trello calls: building each request (path, JSON
 * body, whether it may be repeated), reading each answer, batches, and the
 * single calls of trello.h. Every request runs through engine.c.
 */
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "trello/engine.h"

/* ---- building requests ------------------------------------------------------------- */

/* Append @s percent-encoded as one path segment. */
static int put_seg(buf *b, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;
		int rc;
		if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		    (ch >= '0' && ch <= '9') || ch == '-' || ch == '.' || ch == '_' || ch == '~')
			rc = buf_putc(b, (char)ch);
		else
			rc = buf_printf(b, "%%%c%c", hex[ch >> 4], hex[ch & 15]);
		if (rc)
			return rc;
	}
	return 0;
}

/* Path "/a/{seg}/b/{seg}" built from pieces: @pre, @seg1 (escaped), @mid,
 * @seg2 (escaped, may be NULL), @post. */
static char *make_path(const char *pre, const char *seg1, const char *mid, const char *seg2,
                       const char *post)
{
	buf b;
	buf_init(&b, 8192);
	if (buf_puts(&b, pre) || (seg1 && put_seg(&b, seg1)) || (mid && buf_puts(&b, mid)) ||
	    (seg2 && put_seg(&b, seg2)) || (post && buf_puts(&b, post))) {
		buf_free(&b);
		return NULL;
	}
	return buf_detach(&b, NULL);
}

/* The JSON body of create/update; NULL when out of memory. */
static char *params_json(const trello_webhook_params *p)
{
	json_t *o = json_object();
	char *s = NULL;
	if (!o)
		return NULL;
	/* Trello's field names on the wire: callbackURL, idModel, description, active. */
	if ((p->callback_url &&
	     json_object_set_new(o, "callbackURL", json_string(p->callback_url))) ||
	    (p->id_model && json_object_set_new(o, "idModel", json_string(p->id_model))) ||
	    (p->description &&
	     json_object_set_new(o, "description", json_string(p->description))) ||
	    (p->active >= 0 && json_object_set_new(o, "active", json_boolean(p->active))))
		goto out;
	s = json_dumps(o, JSON_COMPACT);
out:
	json_decref(o);
	return s;
}

static int check_param_strings(const trello_webhook_params *p, th_error *err)
{
	const char *v[] = {p->callback_url, p->id_model, p->description};
	for (size_t i = 0; i < TH_ARRAY_LEN(v); i++)
		if (v[i] && !str_utf8_valid(v[i], strlen(v[i])))
			return th_err(err, TH_EINVAL, "webhook fields must be UTF-8 text");
	if (p->description && strlen(p->description) > 16384)
		return th_err(err, TH_EINVAL,
		              "the description is longer than Trello's 16384 characters");
	return 0;
}

/* Each op's method and path: prefix, the op's token or webhook id (escaped)
 * or nothing, suffix. */
static const struct op_route {
	const char *method, *prefix, *suffix;
	enum { SEG_NONE, SEG_TOKEN, SEG_WEBHOOK } seg;
} op_routes[] = {
    [TRELLO_OP_LIST_WEBHOOKS] = {"GET", "/tokens/", "/webhooks", SEG_TOKEN},
    [TRELLO_OP_GET_TOKEN] = {"GET", "/tokens/", NULL, SEG_TOKEN},
    /* POST /1/webhooks binds the webhook to the token of the Authorization
     * header, exactly like /1/tokens/{token}/webhooks, without putting the
     * token in the URL. */
    [TRELLO_OP_CREATE_WEBHOOK] = {"POST", "/webhooks", NULL, SEG_NONE},
    [TRELLO_OP_GET_WEBHOOK] = {"GET", "/webhooks/", NULL, SEG_WEBHOOK},
    [TRELLO_OP_UPDATE_WEBHOOK] = {"PUT", "/webhooks/", NULL, SEG_WEBHOOK},
    [TRELLO_OP_DELETE_WEBHOOK] = {"DELETE", "/webhooks/", NULL, SEG_WEBHOOK},
};

/* Fill @r for one op. Returns 0 or an error in @err. */
static int op_request(trello_client *c, const trello_op *op, struct treq *r, trello_error *err)
{
	trello_treq_init(r);
	r->token = op->token;
	if (!trello_secret_ok(op->token))
		return th_err(&err->th, TH_EINVAL,
		              "the Trello token is empty or contains characters "
		              "a token never has");
	bool need_id = op->kind == TRELLO_OP_GET_WEBHOOK || op->kind == TRELLO_OP_UPDATE_WEBHOOK ||
	               op->kind == TRELLO_OP_DELETE_WEBHOOK;
	if (need_id && (!op->webhook_id || !*op->webhook_id || strlen(op->webhook_id) > 64))
		return th_err(&err->th, TH_EINVAL, "a Trello webhook id is needed");
	if (op->kind == TRELLO_OP_CREATE_WEBHOOK &&
	    (!op->params.callback_url || !op->params.id_model))
		return th_err(&err->th, TH_EINVAL,
		              "creating a webhook needs a callback URL and a "
		              "model id");
	/* create and update send the webhook's fields as a JSON body */
	bool with_body =
	    op->kind == TRELLO_OP_CREATE_WEBHOOK || op->kind == TRELLO_OP_UPDATE_WEBHOOK;
	if (with_body && check_param_strings(&op->params, &err->th))
		return err->th.code;
	if ((unsigned)op->kind >= TH_ARRAY_LEN(op_routes))
		return th_err(&err->th, TH_EINVAL, "unknown Trello operation %d", (int)op->kind);
	const struct op_route *rt = &op_routes[op->kind];
	r->method = rt->method;
	r->path = make_path(rt->prefix,
	                    rt->seg == SEG_TOKEN     ? op->token
	                    : rt->seg == SEG_WEBHOOK ? op->webhook_id
	                                             : NULL,
	                    rt->suffix, NULL, NULL);
	if (!r->path || (with_body && !(r->body = params_json(&op->params))))
		return th_err(&err->th, TH_ENOMEM, "out of memory");
	/* A POST create is not idempotent: sending it twice may make two webhooks
	 * (or one plus a "duplicate" error). Everything else may be repeated. */
	r->idempotent = op->kind != TRELLO_OP_CREATE_WEBHOOK;
	return 0;
}

/* Read a finished request's answer into the op's outputs. */
static void op_result(trello_op *op, struct treq *r)
{
	op->rc = r->rc;
	op->err = r->err;
	if (op->rc)
		return;
	const char *body = r->hr.body.data ? r->hr.body.data : "";
	switch (op->kind) {
	case TRELLO_OP_LIST_WEBHOOKS:
		op->rc =
		    trello_parse_webhook_list(body, r->hr.body.len, &op->webhooks, &op->err.th);
		break;
	case TRELLO_OP_GET_TOKEN:
		op->rc =
		    trello_parse_token_info(body, r->hr.body.len, &op->token_info, &op->err.th);
		break;
	case TRELLO_OP_CREATE_WEBHOOK:
	case TRELLO_OP_GET_WEBHOOK:
	case TRELLO_OP_UPDATE_WEBHOOK:
		op->rc = trello_parse_webhook(body, r->hr.body.len, &op->webhook, &op->err.th);
		break;
	case TRELLO_OP_DELETE_WEBHOOK: break; /* the body ({"_value":null}) carries nothing */
	}
	if (op->rc) {
		op->err.kind = TRELLO_ERR_BAD_ANSWER;
		op->err.http_status = (int)r->status;
	}
}

/* ---- batches ---------------------------------------------------------------------- */

/* Free an op's outputs. */
void trello_op_clear(trello_op *op)
{
	if (!op)
		return;
	trello_webhook_clear(&op->webhook);
	trello_webhook_list_clear(&op->webhooks);
	trello_token_info_clear(&op->token_info);
	op->rc = 0;
	memset(&op->err, 0, sizeof op->err);
}

/* Run ops concurrently; see trello.h. */
int trello_batch_run(trello_client *c, trello_op *ops, size_t n, th_error *err)
{
	struct treq *reqs = NULL;
	struct treq **todo = NULL;
	size_t ntodo = 0;
	int rc = 0;
	if (!c || (!ops && n))
		return th_err(err, TH_EINVAL, "no Trello client or operations");
	if (!n)
		return 0;
	reqs = calloc(n, sizeof *reqs);
	todo = calloc(n, sizeof *todo);
	if (!reqs || !todo) {
		rc = th_err(err, TH_ENOMEM, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		trello_op_clear(&ops[i]);
		if (op_request(c, &ops[i], &reqs[i], &ops[i].err) != 0) {
			ops[i].rc = ops[i].err.th.code;
			reqs[i].state = RQ_DONE;
			continue;
		}
		todo[ntodo++] = &reqs[i];
	}
	rc = trello_engine_run(c, todo, ntodo, true);
	if (rc)
		th_err(err, rc, "out of memory");
	for (size_t i = 0; i < n; i++)
		if (reqs[i].path) /* prepared, so it ran */
			op_result(&ops[i], &reqs[i]);
out:
	if (reqs)
		for (size_t i = 0; i < n; i++)
			trello_treq_clear(&reqs[i]);
	free(reqs);
	free(todo);
	return rc;
}

/* List the webhooks of many tokens at once; see trello.h. */
int trello_list_webhooks_many(trello_client *c, const char *const *tokens, size_t n,
                              trello_webhook_list *out, trello_error *errs)
{
	trello_op *ops = calloc(n ? n : 1, sizeof *ops);
	int first = 0;
	if (!ops)
		return TH_ENOMEM;
	for (size_t i = 0; i < n; i++) {
		ops[i].kind = TRELLO_OP_LIST_WEBHOOKS;
		ops[i].token = tokens[i];
	}
	th_error berr = {0};
	int rc = trello_batch_run(c, ops, n, &berr);
	for (size_t i = 0; i < n; i++) {
		out[i] = ops[i].webhooks;
		ops[i].webhooks.items = NULL;
		ops[i].webhooks.len = 0;
		if (errs)
			errs[i] = ops[i].err;
		if (ops[i].rc && !first)
			first = ops[i].rc;
		trello_op_clear(&ops[i]);
	}
	free(ops);
	return rc ? rc : first;
}

/* ---- single calls --------------------------------------------------------------------- */

static void err_clear(trello_error *err)
{
	if (err)
		memset(err, 0, sizeof *err);
}

/* Run one op and copy its error out. The op keeps its outputs. */
static int run_one(trello_client *c, trello_op *op, trello_error *err)
{
	th_error berr = {0};
	err_clear(err);
	int rc = trello_batch_run(c, op, 1, &berr);
	if (rc) {
		if (err)
			err->th = berr;
		return rc;
	}
	if (op->rc && err)
		*err = op->err;
	return op->rc;
}

/* Run @op and move the webhook it read into @out (zeroed first; NULL: the
 * webhook is dropped); clears @op. */
static int run_webhook_op(trello_client *c, trello_op *op, trello_webhook *out, trello_error *err)
{
	if (out)
		memset(out, 0, sizeof *out);
	int rc = run_one(c, op, err);
	if (!rc && out) {
		*out = op->webhook;
		memset(&op->webhook, 0, sizeof op->webhook);
	}
	trello_op_clear(op);
	return rc;
}

/* POST /1/tokens/{token}/webhooks; see trello.h. */
int trello_create_webhook(trello_client *c, const char *token, const trello_webhook_params *p,
                          trello_webhook *out, trello_error *err)
{
	trello_op op = {.kind = TRELLO_OP_CREATE_WEBHOOK, .token = token};
	if (p)
		op.params = *p;
	return run_webhook_op(c, &op, out, err);
}

/* GET /1/webhooks/{id}; see trello.h. */
int trello_get_webhook(trello_client *c, const char *token, const char *id, trello_webhook *out,
                       trello_error *err)
{
	trello_op op = {.kind = TRELLO_OP_GET_WEBHOOK, .token = token, .webhook_id = id};
	return run_webhook_op(c, &op, out, err);
}

/* PUT /1/webhooks/{id}; see trello.h. */
int trello_update_webhook(trello_client *c, const char *token, const char *id,
                          const trello_webhook_params *p, trello_webhook *out, trello_error *err)
{
	trello_op op = {.kind = TRELLO_OP_UPDATE_WEBHOOK, .token = token, .webhook_id = id};
	op.params = (trello_webhook_params)TRELLO_WEBHOOK_PARAMS_INIT;
	if (p)
		op.params = *p;
	return run_webhook_op(c, &op, out, err);
}

/* DELETE /1/webhooks/{id}; see trello.h. */
int trello_delete_webhook(trello_client *c, const char *token, const char *id, trello_error *err)
{
	trello_op op = {.kind = TRELLO_OP_DELETE_WEBHOOK, .token = token, .webhook_id = id};
	int rc = run_one(c, &op, err);
	trello_op_clear(&op);
	return rc;
}

/* GET /1/tokens/{token}/webhooks; see trello.h. */
int trello_list_webhooks(trello_client *c, const char *token, trello_webhook_list *out,
                         trello_error *err)
{
	trello_op op = {.kind = TRELLO_OP_LIST_WEBHOOKS, .token = token};
	out->items = NULL;
	out->len = 0;
	int rc = run_one(c, &op, err);
	if (!rc) {
		*out = op.webhooks;
		op.webhooks.items = NULL;
		op.webhooks.len = 0;
	}
	trello_op_clear(&op);
	return rc;
}

/* GET /1/tokens/{token}; see trello.h. */
int trello_get_token(trello_client *c, const char *token, trello_token_info *out, trello_error *err)
{
	trello_op op = {.kind = TRELLO_OP_GET_TOKEN, .token = token};
	memset(out, 0, sizeof *out);
	int rc = run_one(c, &op, err);
	if (!rc) {
		*out = op.token_info;
		memset(&op.token_info, 0, sizeof op.token_info);
	}
	trello_op_clear(&op);
	return rc;
}

/* A plain GET of @path (built by the caller, escaped; ownership passes to
 * this function, NULL means out of memory); on success @resp holds the body
 * (the caller frees it with buf_free). */
static int get_raw(trello_client *c, const char *token, char *path, buf *resp, trello_error *err)
{
	struct treq r;
	struct treq *rp = &r;
	err_clear(err);
	trello_treq_init(&r);
	r.path = path;
	r.method = "GET";
	r.token = token;
	r.idempotent = true;
	int rc;
	if (!path) {
		rc = TH_ENOMEM;
		if (err)
			th_err(&err->th, rc, "out of memory");
		goto out;
	}
	if (!trello_secret_ok(token)) {
		rc = TH_EINVAL;
		if (err)
			th_err(&err->th, rc,
			       "the Trello token is empty or contains characters a token "
			       "never has");
		goto out;
	}
	rc = trello_engine_run(c, &rp, 1, false);
	if (!rc)
		rc = r.rc;
	if (rc && err)
		*err = r.err;
	if (!rc) {
		*resp = r.hr.body;
		buf_init(&r.hr.body, 0); /* the body is the caller's now */
	}
out:
	trello_treq_clear(&r);
	return rc;
}

static int bad_answer_err(int rc, trello_error *err)
{
	if (rc && err) {
		err->kind = TRELLO_ERR_BAD_ANSWER;
		err->th.code = rc;
	}
	return rc;
}

/* GET /1/members/me; see trello.h. */
int trello_get_me(trello_client *c, const char *token, trello_member *out, trello_error *err)
{
	buf resp;
	buf_init(&resp, 0);
	memset(out, 0, sizeof *out);
	int rc = get_raw(c, token, str_dup("/members/me?fields=username,fullName"), &resp, err);
	if (!rc)
		rc = bad_answer_err(trello_parse_member(resp.data ? resp.data : "", resp.len, out,
		                                        err ? &err->th : NULL),
		                    err);
	buf_free(&resp);
	return rc;
}

/* GET /1/members/me/boards; see trello.h. */
int trello_list_boards(trello_client *c, const char *token, trello_board_list *out,
                       trello_error *err)
{
	buf resp;
	buf_init(&resp, 0);
	out->items = NULL;
	out->len = 0;
	int rc =
	    get_raw(c, token, str_dup("/members/me/boards?fields=name,url,shortLink"), &resp, err);
	if (!rc)
		rc = bad_answer_err(trello_parse_board_list(resp.data ? resp.data : "", resp.len,
		                                            out, err ? &err->th : NULL),
		                    err);
	buf_free(&resp);
	return rc;
}

/* GET one model of @type by id or short link. */
static int get_model(trello_client *c, const char *token, enum trello_model_type type,
                     const char *id, trello_model *out, trello_error *err)
{
	static const char *const pre[] = {"/boards/", "/cards/", "/lists/"};
	buf resp;
	buf_init(&resp, 0);
	char *path =
	    make_path(pre[type], id,
	              type == TRELLO_MODEL_LIST ? "?fields=name" : "?fields=name,url", NULL, NULL);
	int rc = get_raw(c, token, path, &resp, err);
	if (!rc)
		rc = bad_answer_err(trello_parse_model(resp.data ? resp.data : "", resp.len, type,
		                                       out, err ? &err->th : NULL),
		                    err);
	buf_free(&resp);
	return rc;
}

/* Path pieces of each model type's resource. */
static const char *model_prefix(enum trello_model_type type)
{
	static const char *const pre[] = {"/boards/", "/cards/", "/lists/"};
	return (unsigned)type < TH_ARRAY_LEN(pre) ? pre[type] : NULL;
}

/* GET one page of a model's actions; see trello.h. */
int trello_list_actions(trello_client *c, const char *token, enum trello_model_type type,
                        const char *id_model, const trello_actions_query *q,
                        trello_action_list *out, trello_error *err)
{
	out->items = NULL;
	out->len = 0;
	err_clear(err);
	const char *pre = model_prefix(type);
	const char *bad = !pre                                                  ? "model type"
	                  : !str_is_trello_id(id_model)                         ? "model id"
	                  : q->limit < 1 || q->limit > TRELLO_ACTIONS_LIMIT_MAX ? "limit"
	                  : q->page < 0                                         ? "page"
	                  : q->since && !trello_action_bound_ok(q->since)       ? "since"
	                  : q->before && !trello_action_bound_ok(q->before)     ? "before"
	                                                                        : NULL;
	if (!bad && q->filter) {
		for (const char *p = q->filter; *p && !bad; p++)
			if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
			      (*p >= '0' && *p <= '9') || *p == ',' || *p == '_'))
				bad = "filter";
	}
	if (bad) {
		if (err)
			th_err(&err->th, TH_EINVAL, "listing actions: invalid %s", bad);
		return TH_EINVAL;
	}
	/* Query: ids and dates are of [0-9a-fA-FTZ:.-] (checked above); ':' is
	 * legal in a query, so no escaping is needed. */
	buf p;
	buf_init(&p, 4096);
	(void)buf_puts(&p, pre);
	(void)put_seg(&p, id_model);
	(void)buf_printf(&p, "/actions?limit=%d", q->limit);
	if (q->page > 0)
		(void)buf_printf(&p, "&page=%d", q->page);
	if (q->filter && *q->filter)
		(void)buf_printf(&p, "&filter=%s", q->filter);
	if (q->since)
		(void)buf_printf(&p, "&since=%s", q->since);
	if (q->before)
		(void)buf_printf(&p, "&before=%s", q->before);
	char *path = buf_detach(&p, NULL);
	buf_free(&p);
	buf resp;
	buf_init(&resp, 0);
	int rc = get_raw(c, token, path, &resp, err);
	if (!rc)
		rc = bad_answer_err(trello_parse_action_list(resp.data ? resp.data : "", resp.len,
		                                             (size_t)q->limit, out,
		                                             err ? &err->th : NULL),
		                    err);
	buf_free(&resp);
	return rc;
}

/* GET a model as Trello returns it; see trello.h. */
int trello_get_model_json(trello_client *c, const char *token, enum trello_model_type type,
                          const char *id_model, char **json, trello_error *err)
{
	*json = NULL;
	err_clear(err);
	const char *pre = model_prefix(type);
	if (!pre || !str_is_trello_id(id_model)) {
		if (err)
			th_err(&err->th, TH_EINVAL, "fetching a model: invalid model id");
		return TH_EINVAL;
	}
	buf resp;
	buf_init(&resp, 0);
	int rc = get_raw(c, token, make_path(pre, id_model, NULL, NULL, NULL), &resp, err);
	json_t *root = NULL;
	if (!rc) {
		json_error_t je;
		root =
		    json_loadb(resp.data ? resp.data : "", resp.len, JSON_REJECT_DUPLICATES, &je);
		const char *id = json_string_value(json_object_get(root, "id"));
		if (!json_is_object(root) || !str_eq(id, id_model))
			rc = th_err(err ? &err->th : NULL, TH_ETRELLO,
			            "Trello sent an unexpected answer: not the %s %s",
			            trello_model_type_name(type), id_model);
		else if (!(*json = json_dumps(root, JSON_COMPACT)))
			rc = th_err(err ? &err->th : NULL, TH_ENOMEM, "out of memory");
		if (rc && err && rc == TH_ETRELLO)
			err->kind = TRELLO_ERR_BAD_ANSWER;
	}
	json_decref(root);
	buf_free(&resp);
	return rc;
}

/* Trello answers an id of the wrong kind with 404, or 400 "invalid id". */
static bool wrong_kind(int rc, const trello_error *e)
{
	return rc == TH_ENOTFOUND || (rc == TH_ETRELLO && e->http_status == 400);
}

/* Resolve --model; see trello.h. */
int trello_resolve_model(trello_client *c, const char *token, const char *id_or_url,
                         trello_model *out, trello_error *err)
{
	trello_model_ref ref;
	trello_error e = {0};
	memset(out, 0, sizeof *out);
	err_clear(err);
	int rc = trello_parse_model_ref(id_or_url, &ref, &e.th);
	if (rc)
		goto out;
	if (ref.kind == TRELLO_REF_BOARD_SHORT || ref.kind == TRELLO_REF_CARD_SHORT) {
		enum trello_model_type t =
		    ref.kind == TRELLO_REF_BOARD_SHORT ? TRELLO_MODEL_BOARD : TRELLO_MODEL_CARD;
		rc = get_model(c, token, t, ref.value, out, &e);
		if (wrong_kind(rc, &e)) {
			int status = e.http_status;
			char said[sizeof e.th.msg];
			str_copy(said, sizeof said, e.th.msg);
			rc = th_err(&e.th, TH_ENOTFOUND, "no %s %s is visible to this token (%s)",
			            trello_model_type_name(t), ref.value, said);
			e.kind = TRELLO_ERR_NOT_FOUND;
			e.http_status = status;
		}
		goto out;
	}
	/* A bare id: a board is the common case, then a card, then a list. */
	static const enum trello_model_type order[] = {TRELLO_MODEL_BOARD, TRELLO_MODEL_CARD,
	                                               TRELLO_MODEL_LIST};
	for (size_t i = 0; i < TH_ARRAY_LEN(order); i++) {
		rc = get_model(c, token, order[i], ref.value, out, &e);
		if (!wrong_kind(rc, &e))
			goto out;
	}
	{
		int status = e.http_status;
		char said[sizeof e.th.msg];
		str_copy(said, sizeof said, e.th.msg);
		rc = th_err(&e.th, TH_ENOTFOUND,
		            "no board, card or list with id %s is visible to this "
		            "token (%s)",
		            ref.value, said);
		e.kind = TRELLO_ERR_NOT_FOUND;
		e.http_status = status;
	}
out:
	if (rc) {
		trello_model_clear(out);
		if (err)
			*err = e;
	}
	return rc;
}
