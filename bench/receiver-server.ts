// The receiver under load, in its own process: `createReceiver` on an Express app at
// `/plain/<case>` (no checks beyond the format) and `/signed/<case>` (Standard Webhooks
// secret from BENCH_SECRET), one receiver per case, made at its first request, so that no
// case inherits the ids another left in the deduplicator. `GET /count` answers {events,
// cpuUs}: events handed to the handler so far and this process's CPU time. Prints its port
// on stdout once listening.
import type { AddressInfo } from 'node:net';
import express, { type Router } from 'express';
import { createReceiver, type Event } from '../lib';

const secret = process.env.BENCH_SECRET;
if (!secret) throw new Error('BENCH_SECRET must hold the Standard Webhooks secret for /signed');

let events = 0;
const onEvent = (_event: Event): void => {
  events++;
};

const receivers = new Map<string, Router>();
const app = express();
app.get('/count', (_req, res) => {
  const cpu = process.cpuUsage();
  res.json({ events, cpuUs: cpu.user + cpu.system });
});
app.use('/:mode/:case', (req, res, next) => {
  const { mode } = req.params as { mode: string; case: string };
  if (mode !== 'plain' && mode !== 'signed') return next();
  const key = `${mode}/${(req.params as { case: string }).case}`;
  let receiver = receivers.get(key);
  if (!receiver) {
    receiver = createReceiver(mode === 'signed' ? { secrets: [secret], onEvent } : { onEvent });
    receivers.set(key, receiver);
  }
  receiver(req, res, next);
});

const server = app.listen(0, '127.0.0.1', () => {
  console.log((server.address() as AddressInfo).port);
});
server.keepAliveTimeout = 60_000;
process.on('SIGTERM', () => {
  server.close(() => process.exit(0));
  server.closeAllConnections();
});
