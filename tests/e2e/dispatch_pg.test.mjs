// SPDX-License-Identifier: MIT
// The handler end-to-end tests of dispatch.test.mjs, on PostgreSQL: every test
// gets a fresh database on a throwaway cluster started by scripts/pg.sh.
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { root } from './lib/serve.mjs';

const available =
  spawnSync(path.join(root, 'scripts', 'pg.sh'), ['available'], { encoding: 'utf8' }).status === 0;
if (available) {
  process.env.TH_DISPATCH_BACKEND = 'postgresql';
  await import('./dispatch.test.mjs');
} else {
  console.error('\n*** SKIPPING the handler tests on PostgreSQL: no PostgreSQL server binaries ' +
    '(install the postgresql package: make deps-test)\n');
}
