// Issue "durable delivery": how fast each store takes events in (committed), how fast a
// 100,000-event backlog drains once the endpoint is back, and the resident memory of a
// registry process holding 1,000,000 pending events.
import { rmSync, mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Endpoint, MemoryStore, RedisStore, SqliteStore, type QueueStore } from '../lib/pipeline';
import type { Event } from '../lib';
import { makeBenchEvents } from './events';
import { deleteRedisKeys, getJson, startChild, stop, type Result } from './util';

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const INGEST = Number(process.env.BENCH_INGEST_EVENTS ?? 20_000);
const BACKLOG = Number(process.env.BENCH_BACKLOG_EVENTS ?? 100_000);
const PENDING = Number(process.env.BENCH_PENDING_EVENTS ?? 1_000_000);

interface StoreKind {
  name: string;
  make(dir: string, queue: string): Promise<QueueStore>;
  cleanup(): Promise<void>;
}

function kinds(prefix: string): StoreKind[] {
  return [
    { name: 'memory', make: async () => new MemoryStore(), cleanup: async () => undefined },
    { name: 'sqlite', make: async (dir, queue) => new SqliteStore({ path: path.join(dir, 'bench.db'), queue }), cleanup: async () => undefined },
    {
      name: 'redis',
      make: (_dir, queue) => RedisStore.connect({ url: REDIS_URL, prefix, queue, consumer: 'bench' }),
      cleanup: () => deleteRedisKeys(REDIS_URL, `${prefix}:*`),
    },
  ];
}

/** Events committed per second: one append per event (each a request's commit), and 64 requests at once. */
async function ingest(kind: StoreKind, dir: string, events: Event[]): Promise<Result[]> {
  const serial = await kind.make(dir, 'ingest-serial');
  let t = performance.now();
  for (const e of events) await serial.append([e]);
  const serialRate = events.length / ((performance.now() - t) / 1000);
  await serial.close();

  const concurrent = await kind.make(dir, 'ingest-concurrent');
  t = performance.now();
  for (let i = 0; i < events.length; i += 64) await Promise.all(events.slice(i, i + 64).map((e) => concurrent.append([e])));
  const concurrentRate = events.length / ((performance.now() - t) / 1000);
  await concurrent.close();
  return [
    { name: `${kind.name}: ingest, one append per event, one at a time`, value: serialRate, unit: 'events/s', note: kind.name === 'memory' ? undefined : 'target ≥ 10,000' },
    { name: `${kind.name}: ingest, one append per event, 64 requests at once`, value: concurrentRate, unit: 'events/s' },
  ];
}

/** A backlog left by an outage drains to a receiver in another process, with Distribution's config as is (our batching defaults). */
async function drain(kind: StoreKind, dir: string, events: Event[], url: string): Promise<Result> {
  const store = await kind.make(dir, 'drain');
  for (let i = 0; i < events.length; i += 1000) await store.append(events.slice(i, i + 1000));
  const before = await getJson<{ events: number }>(url);
  const started = performance.now();
  const endpoint = new Endpoint({ name: 'bench', url }, { store });
  while (endpoint.stats.counters.Successes < events.length) await new Promise((r) => setTimeout(r, 10));
  const seconds = (performance.now() - started) / 1000;
  await endpoint.close();
  const after = await getJson<{ events: number }>(url);
  if (after.events - before.events !== events.length) throw new Error(`${kind.name}: receiver counted ${after.events - before.events}, expected ${events.length}`);
  return { name: `${kind.name}: drain a ${events.length.toLocaleString('en-US')}-event backlog, Distribution's config as is`, value: events.length / seconds, unit: 'events/s' };
}

export async function benchStores(): Promise<Result[]> {
  const results: Result[] = [];
  const dir = mkdtempSync(path.join(os.tmpdir(), 'bench-stores-'));
  const prefix = `regnotify-bench-${process.pid}`;
  const { child, firstLine } = await startChild('bench/counting-receiver.ts');
  const url = `http://127.0.0.1:${firstLine.trim()}/`;
  try {
    const events = makeBenchEvents(Math.max(INGEST, BACKLOG));
    for (const kind of kinds(prefix)) {
      results.push(...(await ingest(kind, dir, events.slice(0, INGEST))));
      if (kind.name !== 'memory') results.push(await drain(kind, dir, events.slice(0, BACKLOG), url));
      await kind.cleanup();
    }
    // Resident memory with a million pending events, each store in a fresh process.
    for (const kind of ['memory', 'sqlite', 'redis']) {
      // The heap store would need gigabytes for a million: a fifth shows how it grows.
      const count = kind === 'memory' ? PENDING / 5 : PENDING;
      const { child: holder, firstLine: line } = await startChild('bench/pending-memory.ts', [kind, String(count), dir, prefix]);
      const { rssMb, heapMb, seconds } = JSON.parse(line) as { rssMb: number; heapMb: number; seconds: number };
      await stop(holder);
      results.push({
        name: `${kind}: resident memory with ${count.toLocaleString('en-US')} events pending`,
        value: rssMb,
        unit: 'MB',
        note: `heap ${Math.round(heapMb)} MB; filled in ${seconds.toFixed(1)}s${kind === 'memory' ? '' : '; target < 200 MB'}`,
      });
    }
  } finally {
    await stop(child);
    await kinds(prefix)[2].cleanup();
    rmSync(dir, { recursive: true, force: true });
  }
  return results;
}
