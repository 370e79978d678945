// SPDX-License-Identifier: MIT
// Whether the PostgreSQL end-to-end tests may be left out. They need the
// server binaries (scripts/pg.sh starts a throwaway cluster). Without them a
// PostgreSQL test FAILS, so a machine without PostgreSQL never reports the
// backend as tested; only TH_SKIP_PG=1 (or TH_PG_OPTIONAL=1) turns that into
// a skip, which Node's runner reports as skipped. Same rule as the unit
// binaries (tests/unit/pg_optional.h).
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { root } from './serve.mjs';

export const pgAvailable =
  spawnSync(path.join(root, 'scripts', 'pg.sh'), ['available'], { encoding: 'utf8' }).status === 0;
const optional = process.env.TH_SKIP_PG === '1' || process.env.TH_PG_OPTIONAL === '1';

/** For a test's `skip` option: false (run it), or the reason it is skipped. */
export const pgSkip = !pgAvailable && optional
  ? 'no PostgreSQL server binaries, and TH_SKIP_PG=1 says skip' : false;

/** Call first in a PostgreSQL test: throws (the test fails) when there is no server. */
export function needPg() {
  if (!pgAvailable) {
    throw new Error('no PostgreSQL server binaries: install the postgresql package (make deps-test), ' +
      'or set TH_SKIP_PG=1 to skip the PostgreSQL tests');
  }
}
