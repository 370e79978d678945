// SPDX-License-Identifier: MIT
// Write distinct, correctly signed ~3 KB Trello deliveries for wrk, one file
// per wrk thread: each line is "SIGNATURE<TAB>BODY".
// usage: node gen-payloads.mjs CALLBACK_URL SECRET PER_THREAD THREADS OUT_DIR
import { createHmac } from 'node:crypto';
import { openSync, writeSync, closeSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const [url, secret, perThread, threads, out] = process.argv.slice(2);
const here = path.dirname(fileURLToPath(import.meta.url));
const template = JSON.parse(readFileSync(path.join(here, '../tests/data/payloads/updateCard-moveList.json')));
// pad the board description so each body is ~3 KB, the size the issue names
template.model.desc = 'Roadmap for 2027: ' + 'ship small, ship often. '.repeat(40);
let n = 0;
for (let t = 0; t < Number(threads); t++) {
  const fd = openSync(path.join(out, `payloads-${t}.txt`), 'w');
  const lines = [];
  for (let i = 0; i < Number(perThread); i++) {
    n += 1;
    template.action.id = (0x7000000000 + n).toString(16).padStart(24, '0');
    template.action.date = new Date(Date.UTC(2026, 10, 20) + n).toISOString();
    const body = JSON.stringify(template);
    const sig = createHmac('sha1', secret).update(body + url).digest('base64');
    lines.push(`${sig}\t${body}\n`);
    if (lines.length === 5000) { writeSync(fd, lines.join('')); lines.length = 0; }
  }
  writeSync(fd, lines.join(''));
  closeSync(fd);
}
const size = Buffer.byteLength(JSON.stringify(template));
console.error(`gen-payloads: ${n} payloads of ~${size} bytes in ${threads} file(s)`);
