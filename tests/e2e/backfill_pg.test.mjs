// SPDX-License-Identifier: MIT
// The backfill end-to-end tests of backfill.test.mjs, on PostgreSQL: every test
// gets a fresh database on a throwaway cluster started by scripts/pg.sh.
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { root } from './lib/serve.mjs';

const available =
  spawnSync(path.join(root, 'scripts', 'pg.sh'), ['available'], { encoding: 'utf8' }).status === 0;
if (available) {
  process.env.TH_BACKFILL_BACKEND = 'postgresql';
  await import('./backfill.test.mjs');
} else {
  console.error('\n*** SKIPPING the backfill tests on PostgreSQL: no PostgreSQL server binaries ' +
    '(install the postgresql package: make deps-test)\n');
}
