/* SPDX-License-Identifier: MIT */
/* service: tokens and forward secrets sealed at rest (round trip, randomised,
 * wrong key, no key, damaged and hostile stored values, old plain rows sealed
 * at start) and recognising our callback URLs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include <sys/stat.h>
#include <unistd.h>

#include "service/doctor.h"
#include "service/handlers.h"
#include "service/service.h"
#include "store/store.h"
#include "trellohook.h"

#define TOK "ATTA0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdefABCDEF12"

static void key_cfg(th_config *cfg, unsigned char fill)
{
	memset(cfg, 0, sizeof *cfg);
	memset(cfg->secret_key, fill, sizeof cfg->secret_key);
	cfg->has_secret_key = true;
}

static void test_seal_round_trip(void **state)
{
	th_config cfg;
	th_error err = {0, {0}};
	char *a = NULL, *b = NULL, *p = NULL;
	key_cfg(&cfg, 7);
	assert_int_equal(tokens_seal(&cfg, TOK, &a, &err), 0);
	assert_int_equal(tokens_seal(&cfg, TOK, &b, &err), 0);
	assert_true(tokens_is_sealed(a));
	assert_null(strstr(a, TOK));
	assert_string_not_equal(a, b); /* a fresh nonce every time */
	assert_int_equal(tokens_open(&cfg, a, &p, &err), 0);
	assert_string_equal(p, TOK);
	free(p);
	p = NULL;
	assert_int_equal(tokens_open(&cfg, b, &p, &err), 0);
	assert_string_equal(p, TOK);
	free(p);
	free(a);
	free(b);
}

static void test_no_key_is_plain(void **state)
{
	th_config cfg;
	th_error err = {0, {0}};
	char *s = NULL, *p = NULL;
	memset(&cfg, 0, sizeof cfg);
	assert_int_equal(tokens_seal(&cfg, TOK, &s, &err), 0);
	assert_string_equal(s, TOK);
	assert_int_equal(tokens_open(&cfg, s, &p, &err), 0);
	assert_string_equal(p, TOK);
	free(p);
	p = NULL;
	/* a plain row written before the key was set still opens with a key */
	key_cfg(&cfg, 1);
	assert_int_equal(tokens_open(&cfg, s, &p, &err), 0);
	assert_string_equal(p, TOK);
	free(p);
	free(s);
}

static void test_wrong_or_missing_key(void **state)
{
	th_config cfg, other, none;
	th_error err = {0, {0}};
	char *s = NULL, *p = NULL;
	key_cfg(&cfg, 7);
	key_cfg(&other, 8);
	memset(&none, 0, sizeof none);
	assert_int_equal(tokens_seal(&cfg, TOK, &s, &err), 0);
	assert_int_equal(tokens_open(&other, s, &p, &err), TH_EAUTH);
	assert_null(p);
	assert_non_null(strstr(err.msg, "TRELLOHOOK_SECRET_KEY"));
	assert_int_equal(tokens_open(&none, s, &p, &err), TH_ECONFIG);
	assert_null(p);
	assert_non_null(strstr(err.msg, "TRELLOHOOK_SECRET_KEY"));
	/* one flipped bit anywhere is refused */
	size_t n = strlen(s);
	for (size_t i = strlen(TOKEN_SEAL_PREFIX); i < n - 2; i += 5) {
		char *t = strdup(s);
		assert_non_null(t);
		t[i] = t[i] == 'A' ? 'B' : 'A';
		assert_int_not_equal(tokens_open(&cfg, t, &p, &err), 0);
		assert_null(p);
		free(t);
	}
	free(s);
}

static void test_damaged_values(void **state)
{
	th_config cfg;
	th_error err = {0, {0}};
	char *p = NULL;
	key_cfg(&cfg, 7);
	static const char *const bad[] = {
	    "enc:v1:",
	    "enc:v1:!!!!",
	    "enc:v1:AAAA",
	    "enc:v1:QUJD",
	    "enc:v1:\xff\xfe\xfd\xfc",
	    "enc:v1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		assert_int_not_equal(tokens_open(&cfg, bad[i], &p, &err), 0);
		assert_null(p);
	}
	/* oversized stored value: refused, not overflowed */
	size_t big = 1 << 16;
	char *huge = malloc(big + 8);
	assert_non_null(huge);
	memcpy(huge, "enc:v1:", 7);
	memset(huge + 7, 'A', big);
	huge[7 + big] = '\0';
	assert_int_not_equal(tokens_open(&cfg, huge, &p, &err), 0);
	assert_null(p);
	/* oversized token to seal */
	huge[0] = 'x';
	assert_int_equal(tokens_seal(&cfg, huge, &p, &err), TH_ETOOBIG);
	assert_null(p);
	free(huge);
	assert_int_equal(tokens_open(&cfg, NULL, &p, &err), TH_EINVAL);
}

/* The token's identity: equal tokens give equal fingerprints however often
 * they are sealed; another key, no key, or another token give other ones. */
static void test_fingerprint(void **state)
{
	(void)state;
	th_config cfg, other, none;
	key_cfg(&cfg, 7);
	key_cfg(&other, 8);
	memset(&none, 0, sizeof none);
	th_error err = {0};
	char a[TOKEN_FP_SIZE], b[TOKEN_FP_SIZE], c[TOKEN_FP_SIZE], d[TOKEN_FP_SIZE],
	    e[TOKEN_FP_SIZE];
	char *s1 = NULL, *s2 = NULL;
	assert_int_equal(tokens_seal(&cfg, TOK, &s1, &err), 0);
	assert_int_equal(tokens_seal(&cfg, TOK, &s2, &err), 0);
	assert_string_not_equal(s1, s2); /* sealing alone cannot tell equal tokens */
	free(s1);
	free(s2);
	assert_int_equal(tokens_fingerprint(&cfg, TOK, a, &err), 0);
	assert_int_equal(tokens_fingerprint(&cfg, TOK, b, &err), 0);
	assert_string_equal(a, b);
	assert_int_equal(strlen(a), TOKEN_FP_SIZE - 1);
	assert_true(str_starts(a, "k:"));
	assert_null(strstr(a, TOK));
	assert_int_equal(tokens_fingerprint(&other, TOK, c, &err), 0);
	assert_string_not_equal(a, c);
	assert_int_equal(tokens_fingerprint(&none, TOK, d, &err), 0);
	assert_true(str_starts(d, "d:"));
	assert_string_not_equal(a + 2, d + 2);
	char tok2[] = TOK;
	tok2[10] = tok2[10] == 'a' ? 'b' : 'a';
	assert_int_equal(tokens_fingerprint(&cfg, tok2, e, &err), 0);
	assert_string_not_equal(a, e);
	/* hostile input: none, oversized */
	assert_int_equal(tokens_fingerprint(&cfg, NULL, e, &err), TH_EINVAL);
	char huge[600];
	memset(huge, 'a', sizeof huge - 1);
	huge[sizeof huge - 1] = '\0';
	assert_int_equal(tokens_fingerprint(&cfg, huge, e, &err), TH_ETOOBIG);
}

/* ---- forward secrets at rest (service/handlers_secret.c), on a real SQLite store ---- */

typedef struct secret_fx {
	char dir[64];
	th_config cfg;
	store *st;
	svc_ctx sc;
} secret_fx;

static void secret_open_store(secret_fx *f, bool with_key)
{
	memset(f, 0, sizeof *f);
	str_copy(f->dir, sizeof f->dir, "/tmp/th-service-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	char url[128];
	str_printf(url, sizeof url, "sqlite:%s/th.db", f->dir);
	if (with_key)
		key_cfg(&f->cfg, 5);
	th_error err = {0, {0}};
	assert_int_equal(store_open(&f->st, url, &err), 0);
	f->sc = (svc_ctx){.cfg = &f->cfg, .st = f->st};
}

static void secret_close_store(secret_fx *f)
{
	store_close(f->st);
	char path[96];
	str_printf(path, sizeof path, "%s/th.db", f->dir);
	(void)unlink(path);
	str_printf(path, sizeof path, "%s/th.db-wal", f->dir);
	(void)unlink(path);
	str_printf(path, sizeof path, "%s/th.db-shm", f->dir);
	(void)unlink(path);
	assert_int_equal(rmdir(f->dir), 0);
}

static char *stored_secret(secret_fx *f, const char *id)
{
	handler h = {0};
	th_error err = {0, {0}};
	assert_int_equal(store_handler_get(f->st, id, &h, &err), 0);
	char *s = h.secret ? str_dup(h.secret) : NULL;
	handler_clear(&h);
	return s;
}

static void test_forward_secret_sealed(void **state)
{
	(void)state;
	secret_fx f;
	secret_open_store(&f, true);
	th_error err = {0, {0}};
	handler_spec spec = {.kind = HANDLER_FORWARD, .target = "http://127.0.0.1:9/hook"};
	handler h;
	assert_int_equal(handlers_add(&f.sc, &spec, &h, &err), 0);
	assert_true(str_starts(h.secret, "whsec_")); /* the caller sees it once, plain */
	char *row = stored_secret(&f, h.id);
	assert_true(tokens_is_sealed(row));
	assert_null(strstr(row, h.secret + 6));
	/* the dispatcher's view: opened in place to the same secret */
	handler g = {0};
	assert_int_equal(store_handler_get(f.st, h.id, &g, &err), 0);
	assert_int_equal(handlers_open_secret(&f.sc, &g, &err), 0);
	assert_string_equal(g.secret, h.secret);
	assert_int_equal(handlers_open_secret(&f.sc, &g, &err), 0); /* plain: left as is */
	assert_string_equal(g.secret, h.secret);
	handler_clear(&g);
	/* listings get it opened (they mask it themselves) */
	handler *hs = NULL;
	size_t n = 0;
	assert_int_equal(svc_handler_list(&f.sc, &hs, &n, &err), 0);
	assert_int_equal(n, 1);
	assert_string_equal(hs[0].secret, h.secret);
	handler_list_free(hs, n);
	/* without the key: it does not open, says what to set; listings keep the sealed form */
	f.cfg.has_secret_key = false;
	assert_int_equal(store_handler_get(f.st, h.id, &g, &err), 0);
	assert_int_equal(handlers_open_secret(&f.sc, &g, &err), TH_ECONFIG);
	assert_non_null(strstr(err.msg, "forward signing secret"));
	assert_non_null(strstr(err.msg, "TRELLOHOOK_SECRET_KEY"));
	handler_clear(&g);
	assert_int_equal(svc_handler_list(&f.sc, &hs, &n, &err), 0);
	assert_string_equal(hs[0].secret, row);
	handler_list_free(hs, n);
	/* another key: TH_EAUTH */
	key_cfg(&f.cfg, 6);
	assert_int_equal(store_handler_get(f.st, h.id, &g, &err), 0);
	assert_int_equal(handlers_open_secret(&f.sc, &g, &err), TH_EAUTH);
	assert_non_null(strstr(err.msg, "cannot decrypt a stored forward signing secret"));
	handler_clear(&g);
	/* a damaged row */
	key_cfg(&f.cfg, 5);
	bool changed = false;
	assert_int_equal(
	    store_handler_set_secret(f.st, h.id, row, "enc:v1:!!not base64", &changed, &err), 0);
	assert_true(changed);
	assert_int_equal(store_handler_get(f.st, h.id, &g, &err), 0);
	assert_int_equal(handlers_open_secret(&f.sc, &g, &err), TH_ESTORE);
	handler_clear(&g);
	free(row);
	handler_clear(&h);
	secret_close_store(&f);
}

static void test_forward_secret_seal_old_rows(void **state)
{
	(void)state;
	secret_fx f;
	secret_open_store(&f, false);
	th_error err = {0, {0}};
	handler_spec fwd = {.kind = HANDLER_FORWARD, .target = "https://example.com/a"};
	handler_spec ex = {.kind = HANDLER_EXEC, .target = "true"};
	handler a, b, e;
	assert_int_equal(handlers_add(&f.sc, &fwd, &a, &err), 0);
	assert_int_equal(handlers_add(&f.sc, &fwd, &b, &err), 0);
	assert_int_equal(handlers_add(&f.sc, &ex, &e, &err), 0);
	char *row = stored_secret(&f, a.id);
	assert_string_equal(row, a.secret); /* no key: stored as it is */
	free(row);
	assert_int_equal(handlers_seal_secrets(&f.sc), 0); /* no key: nothing to do */
	row = stored_secret(&f, a.id);
	assert_string_equal(row, a.secret);
	free(row);
	/* the key is set: start-up seals both forwards, leaves the exec row alone */
	key_cfg(&f.cfg, 5);
	assert_int_equal(handlers_seal_secrets(&f.sc), 0);
	char *ra = stored_secret(&f, a.id), *rb = stored_secret(&f, b.id),
	     *re = stored_secret(&f, e.id);
	assert_true(tokens_is_sealed(ra));
	assert_true(tokens_is_sealed(rb));
	assert_null(strstr(ra, a.secret + 6));
	assert_null(re);
	/* a second start changes nothing */
	assert_int_equal(handlers_seal_secrets(&f.sc), 0);
	char *ra2 = stored_secret(&f, a.id);
	assert_string_equal(ra, ra2);
	handler g = {0};
	assert_int_equal(store_handler_get(f.st, b.id, &g, &err), 0);
	assert_int_equal(handlers_open_secret(&f.sc, &g, &err), 0);
	assert_string_equal(g.secret, b.secret);
	handler_clear(&g);
	free(ra);
	free(ra2);
	free(rb);
	handler_clear(&a);
	handler_clear(&b);
	handler_clear(&e);
	secret_close_store(&f);
}

/* doctor's "store access" line for @f's store; asserts there is one. */
static const doctor_check *access_line(secret_fx *f, doctor_report *rep)
{
	doctor_report_free(rep);
	assert_int_equal(doctor_run(&f->cfg, &f->sc, NULL, rep), 0);
	for (size_t i = 0; i < rep->n; i++)
		if (str_eq(rep->items[i].name, "store access"))
			return &rep->items[i];
	fail_msg("no store access line");
	return NULL;
}

static void test_doctor_store_access(void **state)
{
	(void)state;
	secret_fx f;
	secret_open_store(&f, false);
	str_printf(f.cfg.database_url, sizeof f.cfg.database_url, "sqlite:%s/th.db", f.dir);
	char file[96];
	str_printf(file, sizeof file, "%s/th.db", f.dir);
	doctor_report rep = {0};
	const doctor_check *c = access_line(&f, &rep);
	assert_true(c->ok); /* created 0600 */
	assert_non_null(strstr(c->detail, "is mode 0600"));
	/* readable by others, in a directory they can search */
	assert_int_equal(chmod(f.dir, 0755), 0);
	assert_int_equal(chmod(file, 0644), 0);
	c = access_line(&f, &rep);
	assert_false(c->ok);
	assert_true(str_starts(c->detail, "every local user can read the store ("));
	assert_non_null(strstr(c->detail, "without TRELLOHOOK_SECRET_KEY, the tokens"));
	assert_true(str_starts(c->fix, "chmod 600 "));
	assert_non_null(strstr(c->fix, file));
	/* with a key the tokens are sealed: not named */
	f.cfg.has_secret_key = true;
	c = access_line(&f, &rep);
	assert_false(c->ok);
	assert_null(strstr(c->detail, "tokens"));
	/* writable by others is said as such */
	assert_int_equal(chmod(file, 0666), 0);
	c = access_line(&f, &rep);
	assert_true(str_starts(c->detail, "every local user can write the store ("));
	/* the directory closed to others: out of their reach */
	assert_int_equal(chmod(f.dir, 0750), 0);
	c = access_line(&f, &rep);
	assert_true(c->ok);
	assert_non_null(strstr(c->detail, "but other users cannot reach it: "));
	assert_non_null(strstr(c->detail, "is mode 0750"));
	/* a PostgreSQL URL has no file: no line */
	str_copy(f.cfg.database_url, sizeof f.cfg.database_url, "postgresql://u@127.0.0.1:1/th");
	doctor_report_free(&rep);
	assert_int_equal(doctor_run(&f.cfg, &f.sc, NULL, &rep), 0);
	for (size_t i = 0; i < rep.n; i++)
		assert_string_not_equal(rep.items[i].name, "store access");
	doctor_report_free(&rep);
	assert_int_equal(chmod(f.dir, 0700), 0);
	secret_close_store(&f);
}

static void test_callback_urls(void **state)
{
	th_config cfg;
	svc_ctx a;
	char id[64];
	memset(&cfg, 0, sizeof cfg);
	memset(&a, 0, sizeof a);
	a.cfg = &cfg;
	str_copy(cfg.callback_domain, sizeof cfg.callback_domain, "https://hooks.example.com");
	assert_true(svc_callback_is_ours(
	    &a, "https://hooks.example.com/callbacks/AbCdEfGhIjKlMnOpQrSt", id, sizeof id));
	assert_string_equal(id, "AbCdEfGhIjKlMnOpQrSt");
	assert_false(
	    svc_callback_is_ours(&a, "https://hooks.example.com/callbacks/short", id, sizeof id));
	assert_false(svc_callback_is_ours(
	    &a, "https://hooks.example.com/callbacks/AbCdEfGhIjKlMnOpQrSt?x=1", id, sizeof id));
	assert_false(svc_callback_is_ours(
	    &a, "https://hooks.example.com.evil/callbacks/AbCdEfGhIjKlMnOpQrSt", id, sizeof id));
	assert_false(svc_callback_is_ours(&a, NULL, id, sizeof id));
	assert_true(svc_callback_at_domain(&a, "https://hooks.example.com/anything"));
	assert_true(svc_callback_at_domain(&a, "https://hooks.example.com"));
	assert_false(svc_callback_at_domain(&a, "https://hooks.example.community/x"));
	assert_false(svc_callback_at_domain(&a, "http://hooks.example.com/x"));
	assert_false(svc_callback_at_domain(&a, NULL));
}

/* The public accessors hand C handlers the names the payload had (a card
 * move: the list it went to) and the actor's id. */
static void test_event_name_accessors(void **state)
{
	static const char body[] =
	    "{\"action\":{\"id\":\"6123456789abcdef00010002\",\"type\":\"updateCard\","
	    "\"idMemberCreator\":\"5e3b1c9f8a7d6e5f4a3b2c1d\",\"memberCreator\":{\"fullName\":"
	    "\"Zo\"},\"data\":{\"board\":{\"id\":\"6123456789abcdef01234567\",\"name\":\"B\"},"
	    "\"card\":{\"id\":\"6123456789abcdef0000cc07\",\"name\":\"C\"},"
	    "\"listBefore\":{\"id\":\"6123456789abcdef0000aa01\",\"name\":\"To do\"},"
	    "\"listAfter\":{\"id\":\"6123456789abcdef0000aa02\",\"name\":\"Doing\"}}}}";
	event ev = {0};
	assert_int_equal(event_parse(&ev, body, sizeof body - 1, NULL), 0);
	assert_string_equal(th_event_board_name(&ev), "B");
	assert_string_equal(th_event_card_name(&ev), "C");
	assert_string_equal(th_event_list_name(&ev), "Doing");
	assert_string_equal(th_event_list_id(&ev), "6123456789abcdef0000aa02");
	assert_string_equal(th_event_member_name(&ev), "Zo");
	assert_string_equal(th_event_member(&ev), "Zo");
	assert_string_equal(th_event_member_id(&ev), "5e3b1c9f8a7d6e5f4a3b2c1d");
	assert_string_equal(th_event_source(&ev), "delivery"); /* parsed from a POST */
	ev.source = EVENT_FROM_BACKFILL;
	assert_string_equal(th_event_source(&ev), "backfill");
	event_clear(&ev);
	static const char bare[] =
	    "{\"action\":{\"id\":\"6123456789abcdef00010002\",\"type\":\"x\"}}";
	assert_int_equal(event_parse(&ev, bare, sizeof bare - 1, NULL), 0);
	assert_null(th_event_board_name(&ev));
	assert_null(th_event_list_name(&ev));
	assert_null(th_event_card_name(&ev));
	assert_null(th_event_member_name(&ev));
	assert_null(th_event_member_id(&ev));
	event_clear(&ev);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_seal_round_trip),
	    cmocka_unit_test(test_no_key_is_plain),
	    cmocka_unit_test(test_wrong_or_missing_key),
	    cmocka_unit_test(test_damaged_values),
	    cmocka_unit_test(test_callback_urls),
	    cmocka_unit_test(test_doctor_store_access),
	    cmocka_unit_test(test_event_name_accessors),
	    cmocka_unit_test(test_fingerprint),
	    cmocka_unit_test(test_forward_secret_sealed),
	    cmocka_unit_test(test_forward_secret_seal_old_rows),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
