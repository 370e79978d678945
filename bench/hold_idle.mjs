// SPDX-License-Identifier: MIT
// Hold HOLD (default 800) kept-alive idle connections against the serve at
// TRELLOHOOK_LISTEN (HOST:PORT): each sends one GET /healthz, reads the answer
// and stays open, as a load balancer's pooled connections do. They are spread
// over 127.0.0.2-9, since the guard allows 128 connections per address. A
// connection closed by the server is reopened 100 ms later. Exits once the
// port stops accepting (serve has stopped). Used by bench/hold_idle.sh.
import net from 'node:net';

const [host, port] = process.env.TRELLOHOOK_LISTEN.split(':');
const want = Number(process.env.HOLD || 800);
let open = 0;
let answered = 0;
let stopping = false;

function hold(i) {
  const s = net.connect({ host, port: Number(port), localAddress: `127.0.0.${2 + (i % 8)}` });
  let got = false;
  let connected = false;
  s.on('connect', () => {
    connected = true;
    open++;
    s.write('GET /healthz HTTP/1.1\r\nHost: bench\r\n\r\n');
  });
  s.on('data', () => {
    if (!got) answered++;
    got = true;
  });
  s.on('error', () => {});
  s.on('close', () => {
    if (connected) open--;
    if (!stopping) setTimeout(() => hold(i), 100);
  });
}

for (let i = 0; i < want; i++) hold(i);
setTimeout(() => console.error(`hold_idle: ${open} open, ${answered} answered`), 3000);
const alive = setInterval(() => {
  const probe = net.connect({ host, port: Number(port) });
  probe.on('error', () => {
    stopping = true;
    clearInterval(alive);
    process.exit(0);
  });
  probe.on('connect', () => probe.destroy());
}, 1000);
