// SPDX-License-Identifier: MIT
// The handler end-to-end tests of dispatch.test.mjs, on PostgreSQL: every test
// gets a fresh database on a throwaway cluster started by scripts/pg.sh.
// Without PostgreSQL server binaries this fails, or with TH_SKIP_PG=1 reports
// one skipped test (lib/pg_optional.mjs), never a pass.
import { test } from 'node:test';
import { needPg, pgAvailable, pgSkip } from './lib/pg_optional.mjs';

if (pgAvailable) {
  process.env.TH_DISPATCH_BACKEND = 'postgresql';
  await import('./dispatch.test.mjs');
} else {
  test('the handler tests on PostgreSQL', { skip: pgSkip }, needPg);
}
