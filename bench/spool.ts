// Issue "store outage": what the spool in front of a durable store costs while the store
// is healthy. Every append of a request's events races the store against the commit wait;
// this compares appends per second, one event per append (a request's commit), to a
// SQLite and a Redis store alone and behind a SpoolingStore, in alternating blocks over
// the same store so that a noisy moment falls on both sides alike; and the cost of the
// check itself, over the memory store.
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { MemoryStore, RedisStore, SpoolingStore, SqliteStore, type QueueStore } from '../lib/pipeline';
import type { Event } from '../lib';
import { makeBenchEvents } from './events';
import { deleteRedisKeys, type Result } from './util';

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
/** Events appended on each side. */
const EVENTS = Number(process.env.BENCH_SPOOL_EVENTS ?? 20_000);
const BLOCK = 200;

/** Seconds to append `events`, one event per append, `concurrency` appends in flight. */
async function timed(store: QueueStore, events: Event[], concurrency: number): Promise<number> {
  const t = performance.now();
  for (let i = 0; i < events.length; i += concurrency) {
    await Promise.all(events.slice(i, i + concurrency).map((e) => store.append([e])));
  }
  return (performance.now() - t) / 1000;
}

/**
 * Appends per second to the store alone and behind a spool, in alternating blocks of the
 * same size; `overhead` is the median, over the pairs of blocks, of how much longer the
 * spooled block took: a GC pause or a busy moment lands in a few pairs, not the median.
 */
async function compare(inner: QueueStore, file: string, commitTimeoutMs: number, events: Event[], concurrency: number): Promise<{ bare: number; spooled: number; overhead: number }> {
  const spooled = new SpoolingStore(inner, { file, commitTimeoutMs });
  await timed(inner, events.slice(0, BLOCK), concurrency); // warm-up
  await timed(spooled, events.slice(0, BLOCK), concurrency);
  const seconds = { bare: 0, spooled: 0 };
  const ratios: number[] = [];
  for (let i = 0; i < events.length; i += BLOCK) {
    const block = events.slice(i, i + BLOCK);
    // Which side goes first alternates too.
    const order = (i / BLOCK) % 2 === 0 ? (['bare', 'spooled'] as const) : (['spooled', 'bare'] as const);
    const pair = { bare: 0, spooled: 0 };
    for (const side of order) pair[side] = await timed(side === 'bare' ? inner : spooled, block, concurrency);
    seconds.bare += pair.bare;
    seconds.spooled += pair.spooled;
    ratios.push(pair.spooled / pair.bare);
  }
  await spooled.close(); // closes the store too
  ratios.sort((a, b) => a - b);
  return { bare: events.length / seconds.bare, spooled: events.length / seconds.spooled, overhead: ratios[Math.floor(ratios.length / 2)] - 1 };
}

export async function benchSpool(): Promise<Result[]> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'bench-spool-'));
  const prefix = `regnotify-bench-spool-${process.pid}`;
  const events = makeBenchEvents(EVENTS);
  let queues = 0;
  // As createNotifications makes them: a SQLite append answers at once, so only its failures are spooled.
  const kinds: { name: string; commitTimeoutMs: number; make(): Promise<QueueStore> }[] = [
    { name: 'memory', commitTimeoutMs: 250, make: async () => new MemoryStore() },
    { name: 'sqlite', commitTimeoutMs: Infinity, make: async () => new SqliteStore({ path: path.join(dir, 'bench.db'), queue: `q${++queues}` }) },
    { name: 'redis', commitTimeoutMs: 250, make: () => RedisStore.connect({ url: REDIS_URL, prefix, queue: `q${++queues}`, consumer: 'bench' }) },
  ];
  const results: Result[] = [];
  try {
    for (const kind of kinds) {
      for (const concurrency of kind.name === 'memory' ? [1] : [1, 64]) {
        const { bare, spooled, overhead } = await compare(await kind.make(), path.join(dir, `q${queues}.spool`), kind.commitTimeoutMs, events, concurrency);
        if (kind.name === 'memory') {
          results.push({ name: 'spool check per append, with the commit wait (over the memory store)', value: (1 / spooled - 1 / bare) * 1e6, unit: 'µs/append' });
          continue;
        }
        const what = concurrency === 1 ? 'one at a time' : `${concurrency} at once`;
        results.push({ name: `${kind.name}: ingest ${what}, store alone`, value: bare, unit: 'events/s' });
        results.push({ name: `${kind.name}: ingest ${what}, behind the spool`, value: spooled, unit: 'events/s' });
        results.push({ name: `${kind.name}: ingest ${what}, spool's cost (median of block pairs)`, value: overhead * 100, unit: '%', note: 'target ≤ 5%' });
      }
    }
  } finally {
    await deleteRedisKeys(REDIS_URL, `${prefix}:*`);
    rmSync(dir, { recursive: true, force: true });
  }
  return results;
}
