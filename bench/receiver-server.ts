// The receiver under load, in its own process: `createReceiver` on an Express app at
// `/plain` (no checks beyond the format) and `/signed` (Standard Webhooks secret from
// BENCH_SECRET). `GET /count` answers {events, cpuUs}: events handed to the handler so far
// and this process's CPU time. Prints its port on stdout once listening.
import type { AddressInfo } from 'node:net';
import express from 'express';
import { createReceiver, type Event } from '../lib';

const secret = process.env.BENCH_SECRET;
if (!secret) throw new Error('BENCH_SECRET must hold the Standard Webhooks secret for /signed');

let events = 0;
const onEvent = (_event: Event): void => {
  events++;
};

const app = express();
app.use('/plain', createReceiver({ onEvent }));
app.use('/signed', createReceiver({ secrets: [secret], onEvent }));
app.get('/count', (_req, res) => {
  const cpu = process.cpuUsage();
  res.json({ events, cpuUs: cpu.user + cpu.system });
});

const server = app.listen(0, '127.0.0.1', () => {
  console.log((server.address() as AddressInfo).port);
});
server.keepAliveTimeout = 60_000;
process.on('SIGTERM', () => {
  server.close(() => process.exit(0));
  server.closeAllConnections();
});
