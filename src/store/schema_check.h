/* SPDX-License-Identifier: MIT */
/*
 * schema_check — `trellohook migrate --check`: how far a store's schema is
 * behind this build, read without creating, migrating or writing anything
 * (store_open() always migrates, so this does not go through it).
 */
#ifndef TH_STORE_SCHEMA_CHECK_H
#define TH_STORE_SCHEMA_CHECK_H

#include "util/util.h"

/* Read the schema version of the store named by @database_url (the forms of
 * store_open()) into *@out_current (0: no store or no schema yet) and the
 * latest version this build knows into *@out_latest, and the store's kind
 * ("sqlite" or "postgresql") into *@out_kind (a static string). SQLite is
 * opened read-only (a missing file is not created); PostgreSQL is queried in
 * a read-only transaction. Returns 0, or TH_ECONFIG for a URL it does not
 * understand, TH_EUNAVAIL when the store cannot be opened or reached,
 * TH_ESTORE when it cannot be read; @err never shows a password.
 * Thread-safe: it shares nothing with an open store. */
int store_schema_check(const char *database_url, int *out_current, int *out_latest,
                       const char **out_kind, th_error *err);

#endif
