/* SPDX-License-Identifier: MIT */
/*
 * rss_floor.c — the resident memory of the libraries trellohook serve links,
 * doing what serve does before it goes idle, with none of trellohook's code:
 * the floor under serve's idle RSS. bench/ingest.sh builds and runs it next to
 * the servers and prints it beside their idle RSS.
 *
 * What it does, as serve does at start: initialise libsodium and libcurl,
 * compute one OpenSSL HMAC-SHA1 (the signature check), open a SQLite file in
 * WAL mode and run one write and one read, parse one JSON text with jansson,
 * start libmicrohttpd (epoll, a thread pool of 2) on a loopback port, and start
 * three more threads that sleep (serve's writer, checkpointer and dispatcher).
 * Then what serve does when bench/ingest.sh adds a webhook before it measures
 * the idle RSS: it answers Trello's HEAD (one request to the HTTP server here),
 * opens the sealed token and fingerprints it (libsodium's secretbox and
 * generichash) and asks Trello about the token and the board (one GET through
 * libcurl here, to the HTTP server above). Library code runs in the pages it
 * touches (the kernel maps 64 KiB of a library around each page fault):
 * without these steps the floor missed ~360 KiB of libsodium, libcurl and
 * libc text that serve has resident after the webhook was added.
 * It links the same libraries as trellohook (libpq and liblz4 included) and
 * prints VmRSS in KiB after each step. Not a test; nothing is asserted.
 *
 * usage: rss_floor DIR    (DIR: a scratch directory for the SQLite file)
 *        RSS_FLOOR_SMAPS=FILE also copies /proc/self/smaps there at the end,
 *        to compare mapping by mapping with serve's.
 */
#include <curl/curl.h>
#include <jansson.h>
#include <libpq-fe.h>
#include <lz4.h>
#include <microhttpd.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <pthread.h>
#include <sodium.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* VmRSS of this process in KiB, or -1. */
static long rss_kib(void)
{
	char line[256];
	long kib = -1;
	FILE *f = fopen("/proc/self/status", "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof line, f))
		if (strncmp(line, "VmRSS:", 6) == 0)
			kib = strtol(line + 6, NULL, 10);
	fclose(f);
	return kib;
}

/* Copy @from to @to. 0 or -1. */
static int copy_file(const char *from, const char *to)
{
	FILE *in = fopen(from, "r");
	FILE *out = in ? fopen(to, "w") : NULL;
	char chunk[4096];
	size_t n;
	int rc = out ? 0 : -1;
	while (out && (n = fread(chunk, 1, sizeof chunk, in)) > 0)
		if (fwrite(chunk, 1, n, out) != n)
			rc = -1;
	if (in && ferror(in))
		rc = -1;
	if (out && fclose(out))
		rc = -1;
	if (in)
		fclose(in);
	return rc;
}

static void step(const char *what)
{
	printf("%-32s %6ld KiB\n", what, rss_kib());
}

static enum MHD_Result answer(void *cls, struct MHD_Connection *c, const char *url,
                              const char *method, const char *version, const char *data,
                              size_t *size, void **state)
{
	(void)cls, (void)url, (void)method, (void)version, (void)data, (void)size, (void)state;
	struct MHD_Response *r = MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
	enum MHD_Result ret = MHD_queue_response(c, 200, r);
	MHD_destroy_response(r);
	return ret;
}

/* A token sealed and opened again, and its keyed fingerprint. 0 or -1. */
static int seal_open_fingerprint(void)
{
	static const unsigned char token[] =
	    "ATTAabababababababababababababababababababababababababababababababABCDEF12";
	unsigned char key[crypto_secretbox_KEYBYTES], nonce[crypto_secretbox_NONCEBYTES];
	unsigned char sealed[sizeof token + crypto_secretbox_MACBYTES], opened[sizeof token];
	unsigned char fp[32];
	randombytes_buf(key, sizeof key);
	randombytes_buf(nonce, sizeof nonce);
	if (crypto_secretbox_easy(sealed, token, sizeof token, nonce, key) ||
	    crypto_secretbox_open_easy(opened, sealed, sizeof sealed, nonce, key))
		return -1;
	return crypto_generichash(fp, sizeof fp, opened, sizeof opened, key, sizeof key);
}

static size_t discard(char *p, size_t size, size_t n, void *arg)
{
	(void)p, (void)arg;
	return size * n;
}

/* One GET through libcurl to @d's port. 0 or -1. */
static int one_get(struct MHD_Daemon *d)
{
	const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
	if (!info)
		return -1;
	char url[64];
	snprintf(url, sizeof url, "http://127.0.0.1:%u/1/tokens/x", (unsigned)info->port);
	CURL *h = curl_easy_init();
	if (!h)
		return -1;
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, discard);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 5000L);
	CURLcode rc = curl_easy_perform(h);
	curl_easy_cleanup(h);
	return rc == CURLE_OK ? 0 : -1;
}

static void *sleeper(void *arg)
{
	for (;;)
		pause();
	return arg;
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: rss_floor DIR\n");
		return 2;
	}
	step("libraries loaded");
	if (sodium_init() < 0 || curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		fprintf(stderr, "rss_floor: library initialisation failed\n");
		return 1;
	}
	step("libsodium, libcurl initialised");

	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned int mac_len = 0;
	static const char body[] = "{\"action\":{}}https://example.com/callbacks/x";
	if (!HMAC(EVP_sha1(), "secret", 6, (const unsigned char *)body, sizeof body - 1, mac,
	          &mac_len)) {
		fprintf(stderr, "rss_floor: HMAC-SHA1 failed\n");
		return 1;
	}
	step("one HMAC-SHA1");

	char path[4096];
	snprintf(path, sizeof path, "%s/rss_floor.db", argv[1]);
	sqlite3 *db = NULL;
	if (sqlite3_open(path, &db) != SQLITE_OK ||
	    sqlite3_exec(db,
	                 "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;"
	                 "CREATE TABLE IF NOT EXISTS t (x BLOB); INSERT INTO t VALUES (x'00');"
	                 "SELECT count(*) FROM t;",
	                 NULL, NULL, NULL) != SQLITE_OK) {
		fprintf(stderr, "rss_floor: SQLite: %s\n", db ? sqlite3_errmsg(db) : "open failed");
		return 1;
	}
	step("SQLite file in WAL mode");

	json_t *j = json_loads("{\"a\":[1,2,{\"b\":\"c\"}]}", 0, NULL);
	json_decref(j);
	step("one jansson parse");

	struct MHD_Daemon *d = MHD_start_daemon(
	    MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ITC, 0, NULL, NULL, answer,
	    NULL, MHD_OPTION_THREAD_POOL_SIZE, (unsigned)2, MHD_OPTION_END);
	if (!d) {
		fprintf(stderr, "rss_floor: libmicrohttpd did not start\n");
		return 1;
	}
	pthread_t t[3];
	for (int i = 0; i < 3; i++)
		if (pthread_create(&t[i], NULL, sleeper, NULL)) {
			fprintf(stderr, "rss_floor: no threads\n");
			return 1;
		}
	usleep(200 * 1000);
	(void)PQlibVersion();      /* linked as trellohook links it; not connected */
	(void)LZ4_versionNumber(); /* likewise: serve packs nothing before its first event */
	step("HTTP server and threads up");

	if (seal_open_fingerprint() || one_get(d)) {
		fprintf(stderr, "rss_floor: libsodium or libcurl failed\n");
		return 1;
	}
	usleep(200 * 1000);
	step("a webhook added (token, GET)");
	const char *smaps = getenv("RSS_FLOOR_SMAPS");
	if (smaps && copy_file("/proc/self/smaps", smaps)) {
		fprintf(stderr, "rss_floor: could not write %s\n", smaps);
		return 1;
	}
	MHD_stop_daemon(d);
	sqlite3_close(db);
	return 0;
}
