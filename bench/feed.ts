// Issue "pull feed": how fast a consumer reads the feed, and how soon an idle long poll
// hears of a new event. Reads: BENCH_FEED_EVENTS events (100,000) written to the feed of
// a SQLite and a Redis log as the recorder writes them, then read over HTTP in pages of
// 500, each page parsed, by one consumer. Latency: an event emitted by a request to a
// registry-shaped app while a long poll (`wait=30s`) waits, from the moment the request
// is sent to the moment the long poll's answer is parsed; on the same process (memory,
// SQLite, Redis) and, for Redis, on a second replica that learns of it by polling.
import { mkdtempSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import type http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import express from 'express';
import { createNotifications, createStatsRouter, type Event, type Notifications } from '../lib';
import { LogClock } from '../lib/stores/delivery-log';
import { makeBenchEvents } from './events';
import { deleteRedisKeys, type Result } from './util';

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const EVENTS = Number(process.env.BENCH_FEED_EVENTS ?? 100_000);
const PAGE = 500;
/** Long polls timed per store; the median and the 95th percentile are reported. */
const ROUNDS = Number(process.env.BENCH_FEED_ROUNDS ?? 50);

const percentile = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * p))];

/** A registry-shaped app: the middleware, a route that pushes a blob, and the stats router (the feed at /events). */
async function serve(config: object): Promise<{ url: string; notifications: Notifications; close(): Promise<void> }> {
  const notifications = createNotifications(config, { onError: () => undefined });
  await notifications.ready();
  const app = express();
  app.use(notifications.middleware);
  let n = 0;
  app.post('/push', async (req, res) => {
    n++;
    await notifications.bridge(req).blobPushed('demo/app', { mediaType: 'application/octet-stream', size: n, digest: 'sha256:' + n.toString(16).padStart(64, '0') });
    res.status(201).end();
  });
  app.use(createStatsRouter(notifications));
  const server: http.Server = await new Promise((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    notifications,
    close: async () => {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
      await notifications.close();
    },
  };
}

async function getPage(url: string): Promise<{ events: Event[]; cursor?: string }> {
  const res = await fetch(url);
  if (res.status !== 200) throw new Error(`${url}: ${res.status} ${await res.text()}`);
  return (await res.json()) as { events: Event[]; cursor?: string };
}

/** Fills the feed as the recorder would (batches of 500), then reads it all in pages of 500. */
async function readAll(name: string, config: object): Promise<Result> {
  const s = await serve(config);
  try {
    const log = s.notifications.deliveryLog.log;
    const clock = new LogClock();
    const events = makeBenchEvents(EVENTS);
    for (let i = 0; i < events.length; i += PAGE) {
      const batch = events.slice(i, i + PAGE);
      await log.write([{ kind: 'feed', events: batch, seq: clock.next(batch.length), at: Date.now() }]);
    }
    const started = performance.now();
    let cursor = '';
    let read = 0;
    for (;;) {
      const page = await getPage(`${s.url}/events?limit=${PAGE}&cursor=${cursor}`);
      if (page.events.length === 0) break;
      read += page.events.length;
      cursor = page.cursor!;
    }
    const seconds = (performance.now() - started) / 1000;
    if (read !== EVENTS) throw new Error(`${name}: read ${read} events of ${EVENTS}`);
    return { name: `feed ${name}: one consumer, pages of ${PAGE} over HTTP`, value: read / seconds, unit: 'events/s', note: `${EVENTS.toLocaleString('en-US')} events, target ≥ 50,000` };
  } finally {
    await s.close();
  }
}

/** From the request that emits an event to the answer of a long poll waiting on `reader`. */
async function latency(name: string, writer: { url: string }, reader: { url: string; notifications: Notifications }): Promise<Result[]> {
  let cursor = (await getPage(`${reader.url}/events?limit=1000`)).cursor ?? '';
  const ms: number[] = [];
  for (let i = 0; i < ROUNDS; i++) {
    // Drain, so the poll below is idle.
    for (let p = await getPage(`${reader.url}/events?limit=1000&cursor=${cursor}`); p.events.length > 0; p = await getPage(`${reader.url}/events?limit=1000&cursor=${cursor}`)) cursor = p.cursor!;
    const poll = getPage(`${reader.url}/events?wait=30s&cursor=${cursor}`);
    while (reader.notifications.feed!.waiting === 0) await new Promise((r) => setTimeout(r, 2));
    // Give the reader's first read time to settle into its wait.
    await new Promise((r) => setTimeout(r, 20));
    const sent = performance.now();
    await fetch(`${writer.url}/push`, { method: 'POST' });
    const page = await poll;
    ms.push(performance.now() - sent);
    if (page.events.length !== 1) throw new Error(`${name}: the long poll answered ${page.events.length} events`);
    cursor = page.cursor!;
  }
  return [
    { name: `feed ${name}: emit to idle long poll, median`, value: percentile(ms, 0.5), unit: 'ms', note: `${ROUNDS} rounds, target ≤ 50` },
    { name: `feed ${name}: emit to idle long poll, p95`, value: percentile(ms, 0.95), unit: 'ms' },
  ];
}

export async function benchFeed(): Promise<Result[]> {
  const results: Result[] = [];
  const dir = mkdtempSync(path.join(os.tmpdir(), 'bench-feed-'));
  const prefix = `bench-feed-${process.pid}`;
  const sqlite = (file: string) => ({ queue: { type: 'sqlite', path: path.join(dir, file), spooldir: path.join(dir, 'spool') }, feed: { enabled: true }, log: { events: EVENTS } });
  const redis = (p: string) => ({ queue: { type: 'redis', url: REDIS_URL, prefix: p }, feed: { enabled: true }, log: { events: EVENTS } });
  try {
    results.push(await readAll('SQLite', sqlite('read.db')));
    results.push(await readAll('Redis', redis(`${prefix}-read`)));
    for (const [name, config] of [
      ['memory', { feed: { enabled: true } }],
      ['SQLite', sqlite('latency.db')],
      ['Redis', redis(`${prefix}-latency`)],
    ] as const) {
      const s = await serve(config);
      try {
        results.push(...(await latency(name, s, s)));
      } finally {
        await s.close();
      }
    }
    // Two replicas on one Redis: the event is written by one, the long poll waits on the other.
    const [a, b] = [await serve(redis(`${prefix}-replicas`)), await serve(redis(`${prefix}-replicas`))];
    try {
      results.push(...(await latency('Redis, other replica', a, b)));
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
    await deleteRedisKeys(REDIS_URL, `${prefix}-*`);
  }
  return results;
}
