// SPDX-License-Identifier: MIT
// `make install DESTDIR=…`: the exact file list, the shared library's soname
// and exports, a program built against the installed header and trellohook.pc,
// man pages that lint clean and document every command and variable, and a
// systemd unit that systemd-analyze accepts (where systemd-analyze exists).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { lstatSync, readFileSync, readdirSync, readlinkSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { buildDir, root, tempDir } from './lib/serve.mjs';

let tmp;
let dest; // DESTDIR
let opts; // meson's directory options, absolute
let version;

function run(cmd, args, options = {}) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 300000, ...options });
  if (r.error) throw r.error;
  return r;
}

function have(cmd) {
  return run('sh', ['-c', `command -v ${cmd}`]).status === 0;
}

/** A meson directory option as an absolute path (sysconfdir may be /etc). */
function dirOption(all, name) {
  const v = all.find((o) => o.name === name).value;
  return path.isAbsolute(v) ? v : path.join(all.find((o) => o.name === 'prefix').value, v);
}

before(() => {
  tmp = tempDir('th-install-');
  dest = path.join(tmp.dir, 'dest');
  const r = run('make', ['-C', root, '--no-print-directory', 'install', `BUILD=${buildDir}`, `DESTDIR=${dest}`]);
  assert.equal(r.status, 0, `make install failed:\n${r.stdout}\n${r.stderr}`);
  const all = JSON.parse(run('meson', ['introspect', buildDir, '--buildoptions']).stdout);
  const unit = all.find((o) => o.name === 'systemdunitdir').value;
  opts = {
    prefix: all.find((o) => o.name === 'prefix').value,
    bindir: dirOption(all, 'bindir'),
    libdir: dirOption(all, 'libdir'),
    includedir: dirOption(all, 'includedir'),
    mandir: dirOption(all, 'mandir'),
    sysconfdir: dirOption(all, 'sysconfdir'),
    unitdir: unit || path.join(all.find((o) => o.name === 'prefix').value, 'lib/systemd/system'),
  };
  version = JSON.parse(run('meson', ['introspect', buildDir, '--projectinfo']).stdout).version;
});

after(() => tmp?.cleanup());

const inDest = (p) => path.join(dest, p);

/** Every file and symlink under @dir, as absolute paths without DESTDIR. */
function walk(dir, out = []) {
  for (const name of readdirSync(dir)) {
    const p = path.join(dir, name);
    if (lstatSync(p).isDirectory()) walk(p, out);
    else out.push('/' + path.relative(dest, p));
  }
  return out;
}

test('make install puts exactly the documented files under DESTDIR', () => {
  const { bindir, libdir, includedir, mandir, sysconfdir, unitdir } = opts;
  const want = [
    `${bindir}/trello-mock`,
    `${bindir}/trellohook`,
    `${includedir}/trellohook.h`,
    `${libdir}/libtrellohook.so`,
    `${libdir}/libtrellohook.so.0`,
    `${libdir}/libtrellohook.so.${version}`,
    `${libdir}/pkgconfig/trellohook.pc`,
    `${mandir}/man1/trello-mock.1`,
    `${mandir}/man1/trellohook.1`,
    `${mandir}/man7/trellohook.7`,
    `${sysconfdir}/trellohook/trellohook.env`,
    `${unitdir}/trellohook.service`,
  ].sort();
  // Whether the static archive is installed is the architecture work's call,
  // not this test's: it is neither required nor refused here.
  const got = walk(dest).filter((p) => p !== `${libdir}/libtrellohook.a`).sort();
  assert.deepEqual(got, want);
  for (const exe of ['trellohook', 'trello-mock']) {
    assert.ok(statSync(inDest(`${bindir}/${exe}`)).mode & 0o111, `${exe} is executable`);
  }
  const v = run(inDest(`${bindir}/trellohook`), ['version'], { env: { PATH: process.env.PATH } });
  assert.equal(v.status, 0, v.stderr);
  assert.match(v.stdout, new RegExp(`^trellohook ${version.replace(/\./g, '\\.')}`));
  // the environment file may hold a secret after all: only its owner reads it
  assert.equal(statSync(inDest(`${sysconfdir}/trellohook/trellohook.env`)).mode & 0o777, 0o600);
});

test('the shared library has its soname, its links, and exports th_* only', () => {
  const lib = inDest(`${opts.libdir}/libtrellohook.so.${version}`);
  assert.equal(readlinkSync(inDest(`${opts.libdir}/libtrellohook.so`)), 'libtrellohook.so.0');
  assert.equal(readlinkSync(inDest(`${opts.libdir}/libtrellohook.so.0`)), `libtrellohook.so.${version}`);
  const dyn = run('readelf', ['-d', lib]).stdout;
  assert.match(dyn, /\(SONAME\)\s+Library soname: \[libtrellohook\.so\.0\]/);
  const syms = run('nm', ['-D', '--defined-only', lib]).stdout.trim().split('\n')
    .map((l) => l.trim().split(/\s+/).pop());
  assert.ok(syms.includes('th_app_new') && syms.includes('th_connect'), syms.join(' '));
  assert.deepEqual(syms.filter((s) => !s.startsWith('th_')), []);
});

test('a program builds against the installed header and trellohook.pc', () => {
  const env = {
    ...process.env,
    PKG_CONFIG_SYSROOT_DIR: dest,
    PKG_CONFIG_LIBDIR: inDest(`${opts.libdir}/pkgconfig`),
  };
  const pc = run('pkg-config', ['--cflags', '--libs', 'trellohook'], { env });
  assert.equal(pc.status, 0, pc.stderr);
  assert.ok(pc.stdout.includes(`-I${inDest(opts.includedir)}`), pc.stdout);
  const exe = path.join(tmp.dir, 'print_summaries');
  const cc = run('cc', ['-std=c17', '-Wall', '-Werror', path.join(root, 'examples/print_summaries.c'),
    '-o', exe, ...pc.stdout.trim().split(/\s+/)], { env });
  assert.equal(cc.status, 0, cc.stderr);
  // the installed library is the one it runs with: a bad variable is refused with exit 2
  const r = run(exe, [], {
    env: { PATH: process.env.PATH, LD_LIBRARY_PATH: inDest(opts.libdir), TRELLOHOOK_LISTEN: 'nonsense' },
  });
  assert.equal(r.status, 2, r.stderr);
  assert.match(r.stderr, /TRELLOHOOK_LISTEN/);
  const ldd = run('ldd', [exe], { env: { PATH: process.env.PATH, LD_LIBRARY_PATH: inDest(opts.libdir) } }).stdout;
  assert.ok(ldd.includes(inDest(opts.libdir)), ldd);
});

const pages = () => [
  `${opts.mandir}/man1/trellohook.1`, `${opts.mandir}/man1/trello-mock.1`, `${opts.mandir}/man7/trellohook.7`,
].map(inDest);

test('the man pages lint clean (mandoc -T lint) and render without warnings (man -l)', () => {
  for (const page of pages()) {
    const lint = run('mandoc', ['-T', 'lint', page]);
    // cross-references between our own pages resolve once they are installed;
    // mandoc looks them up in the system's database, so only those may be missing
    const problems = lint.stdout.concat(lint.stderr).split('\n').filter((l) => l &&
      !/referenced manual not found: Xr (trellohook|trello-mock) [17]/.test(l) &&
      !/outdated mandoc\.db/.test(l));
    assert.deepEqual(problems, [], `mandoc -T lint ${page}`);
    const man = run('man', ['--warnings', '-l', page], { env: { ...process.env, MANWIDTH: '80', MAN_KEEP_FORMATTING: '' } });
    assert.equal(man.status, 0, man.stderr);
    assert.equal(man.stderr, '', `man --warnings -l ${page}`);
    assert.match(man.stdout, /^NAME/m);
    assert.match(man.stdout, /^SEE ALSO/m);
  }
});

test('trellohook(1) documents every command and variable of --help', () => {
  const help = run(inDest(`${opts.bindir}/trellohook`), ['--help'], { env: { PATH: process.env.PATH } }).stdout;
  const commands = [...help.matchAll(/^  ([a-z]+(?: [a-z]+)?)  /gm)].map((m) => m[1]);
  const vars = [...help.matchAll(/^  ([A-Z][A-Z_]+) {2,}--/gm)].map((m) => m[1]);
  assert.ok(commands.length >= 20 && vars.length >= 15, help);
  assert.equal([...help.matchAll(/^  [A-Z_]+ +credential /gm)].length, 4);
  const page = run('man', ['-l', pages()[0]], { env: { ...process.env, MANWIDTH: '200' } }).stdout;
  for (const c of commands) assert.ok(page.includes(`trellohook ${c}`), `command "${c}" in trellohook(1)`);
  for (const v of vars) {
    assert.ok(page.includes(v), `variable ${v} in trellohook(1)`);
    if (new RegExp(`^  ${v} +credential `, 'm').test(help)) assert.ok(page.includes(`${v}_FILE`), `${v}_FILE in trellohook(1)`);
  }
  const mockHelp = run(inDest(`${opts.bindir}/trello-mock`), ['--help']).stdout;
  const mockPage = run('man', ['-l', pages()[1]], { env: { ...process.env, MANWIDTH: '200' } }).stdout;
  for (const [, flag] of mockHelp.matchAll(/^ {2}(--[a-z-]+)/gm)) assert.ok(mockPage.includes(flag), `${flag} in trello-mock(1)`);
});

test('trellohook.service has the documented settings and loads the credentials serve reads', () => {
  const unitPath = inDest(`${opts.unitdir}/trellohook.service`);
  const unit = readFileSync(unitPath, 'utf8');
  const lines = unit.split('\n');
  for (const want of [
    `ExecStart=${opts.bindir}/trellohook serve`, 'DynamicUser=yes', 'StateDirectory=trellohook',
    'WorkingDirectory=%S/trellohook', 'NoNewPrivileges=yes', 'ProtectSystem=strict', 'ProtectHome=yes',
    'PrivateTmp=yes', 'RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX', 'Restart=on-failure',
    `EnvironmentFile=-${opts.sysconfdir}/trellohook/trellohook.env`, 'WantedBy=multi-user.target',
    // SIGTERM to serve alone, which lets running deliveries finish (not to every handler too)
    'KillMode=mixed', 'TimeoutStopSec=90s',
  ]) assert.ok(lines.includes(want), want);
  // one LoadCredential= per credential that `trellohook --help` says it reads
  const help = run(inDest(`${opts.bindir}/trellohook`), ['--help'], { env: { PATH: process.env.PATH } }).stdout;
  const creds = [...help.matchAll(/ credential (trellohook\.[a-z_]+)$/gm)].map((m) => m[1]).sort();
  assert.equal(creds.length, 4);
  const loaded = lines.filter((l) => l.startsWith('LoadCredential=')).map((l) => l.slice(15)).sort();
  assert.deepEqual(loaded, creds);
  // every variable the example environment file names is one trellohook knows
  const envFile = readFileSync(inDest(`${opts.sysconfdir}/trellohook/trellohook.env`), 'utf8');
  const named = [...envFile.matchAll(/^#?([A-Z][A-Z_]+)=/gm)].map((m) => m[1]);
  assert.ok(named.includes('CALLBACK_DOMAIN'));
  for (const v of named) assert.ok(help.includes(`  ${v} `), `${v} of trellohook.env is a real variable`);

});

/** The installed unit with ExecStart= pointing into DESTDIR (verify checks the program). */
function unitCopy(name, edit = (u) => u) {
  const unit = readFileSync(inDest(`${opts.unitdir}/trellohook.service`), 'utf8');
  const copy = path.join(tmp.dir, name);
  writeFileSync(copy, edit(unit.replace(/^ExecStart=/m, `ExecStart=${dest}`)));
  return copy;
}

const analyzeEnv = () => ({ ...process.env, MANPATH: inDest(opts.mandir) });

test('systemd-analyze verify accepts trellohook.service, man pages included', (t) => {
  if (!have('systemd-analyze')) return t.skip('systemd-analyze is not installed');
  const r = run('systemd-analyze', ['verify', unitCopy('trellohook.service')], { env: analyzeEnv() });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stderr.trim(), '', r.stderr);
});

test('systemd-analyze verify does report a broken unit (the check above can fail)', (t) => {
  if (!have('systemd-analyze')) return t.skip('systemd-analyze is not installed');
  const copy = unitCopy('broken.service', (u) => u.replace('ProtectHome=yes', 'ProtectHom=yes'));
  const r = run('systemd-analyze', ['verify', copy], { env: analyzeEnv() });
  assert.match(r.stderr, /Unknown key.*ProtectHom/);
});
