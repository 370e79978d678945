// SPDX-License-Identifier: MIT
// The backfill end-to-end tests of backfill.test.mjs, on PostgreSQL: every test
// gets a fresh database on a throwaway cluster started by scripts/pg.sh.
// Without a server this fails, or with TH_SKIP_PG=1 is skipped (lib/pg_optional.mjs).
import { test } from 'node:test';
import { needPg, pgAvailable, pgSkip } from './lib/pg_optional.mjs';

if (pgAvailable) {
  process.env.TH_BACKFILL_BACKEND = 'postgresql';
  await import('./backfill.test.mjs');
} else {
  test('backfill on postgresql: a server to run on', { skip: pgSkip }, () => needPg());
}
