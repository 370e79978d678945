// SPDX-License-Identifier: MIT
// rss_share.mjs — trellohook's own share of its idle RSS, from two copies of
// /proc/PID/smaps taken at idle: serve's and bench/rss_floor.c's (the same
// libraries doing what serve did, none of trellohook's code).
//
// Prints two figures:
//  - RSS minus the floor's RSS (issue 18's definition);
//  - the share mapping by mapping: all of the program's own mappings (its text
//    and data), plus, for every library, the heap, anonymous memory and
//    SQLite's shared memory, what serve has resident beyond the floor (never
//    less than 0). Where the floor touched more of a library than serve did,
//    the first figure is lowered by it and this one is not; it is the one to
//    hold against a target.
// and the mappings that make up most of the second.
//
// usage: node bench/rss_share.mjs SERVE_SMAPS FLOOR_SMAPS [PROGRAM_NAMES]
//        PROGRAM_NAMES: comma-separated basenames of the programs' own files
//        (default trellohook,rss_floor)
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';

const [serveFile, floorFile, names = 'trellohook,rss_floor'] = process.argv.slice(2);
if (!serveFile || !floorFile) {
  console.error('usage: node bench/rss_share.mjs SERVE_SMAPS FLOOR_SMAPS [PROGRAM_NAMES]');
  process.exit(2);
}
const programs = new Set(names.split(','));

// Resident KiB per mapping kind: "lib PERMS" for files, [heap], [anon], the
// program's own files as "program PERMS", SQLite's -shm files as one "shm".
function load(file) {
  const kib = new Map();
  let key = null;
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const head = line.match(/^[0-9a-f]+-[0-9a-f]+ (\S+) \S+ \S+ \S+\s*(.*)$/);
    if (head) {
      const [, perms, path] = head;
      const name = path ? basename(path) : '[anon]';
      if (programs.has(name)) key = `program ${perms}`;
      else if (name.endsWith('-shm')) key = 'SQLite shm';
      else if (name.startsWith('[')) key = name.startsWith('[stack') ? '[stack]' : name;
      else key = `${name} ${perms}`;
      continue;
    }
    const rss = line.match(/^Rss:\s+(\d+) kB/);
    if (rss && key) kib.set(key, (kib.get(key) ?? 0) + Number(rss[1]));
  }
  return kib;
}

const serve = load(serveFile);
const floor = load(floorFile);
const total = (m) => [...m.values()].reduce((a, b) => a + b, 0);
const rows = [];
for (const [key, kib] of serve) {
  const own = key.startsWith('program ') ? kib : Math.max(0, kib - (floor.get(key) ?? 0));
  if (own > 0) rows.push([key, own, kib, key.startsWith('program ') ? 0 : floor.get(key) ?? 0]);
}
rows.sort((a, b) => b[1] - a[1]);
const byMapping = rows.reduce((a, r) => a + r[1], 0);
const mib = (k) => (k / 1024).toFixed(2);
console.log(`own share of idle RSS: RSS - floor ${total(serve) - total(floor)} KiB` +
  ` (${mib(total(serve) - total(floor))} MiB); by mapping ${byMapping} KiB (${mib(byMapping)} MiB)`);
console.log('  largest parts (KiB: share, serve, floor): ' +
  rows.slice(0, 8).map(([k, own, s, f]) => `${k} ${own} (${s}/${f})`).join('; '));
