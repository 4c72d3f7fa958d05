// Run by bench/stores.ts in a process of its own: fills one endpoint's store with N events
// while the endpoint is down (as during a long outage), then prints one JSON line with
// the process's resident memory. Arguments: KIND N DIR REDIS_PREFIX.
import path from 'node:path';
import { Endpoint, MemoryStore, RedisStore, SqliteStore, type QueueStore } from '../lib/pipeline';
import { makeBenchEvents } from './events';

async function main(): Promise<void> {
  const [kind, n, dir, prefix] = process.argv.slice(2);
  const total = Number(n);
  const store: QueueStore =
    kind === 'memory'
      ? new MemoryStore()
      : kind === 'sqlite'
        ? new SqliteStore({ path: path.join(dir, 'pending.db'), queue: 'pending' })
        : await RedisStore.connect({ url: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379', prefix, queue: 'pending', consumer: 'bench' });
  // Nothing listens on port 9: every attempt fails and the breaker keeps the events pending.
  const endpoint = new Endpoint({ name: 'down', url: 'http://127.0.0.1:9/', backoffMs: 3_600_000, threshold: 1 }, { store, onError: () => undefined, drainTimeoutMs: 0 });
  const started = performance.now();
  const batch = 1000;
  for (let i = 0; i < total; i += batch) {
    // Fresh objects per batch, as requests would make them; the store, not the heap, keeps them.
    await endpoint.write(makeBenchEvents(Math.min(batch, total - i)));
  }
  const seconds = (performance.now() - started) / 1000;
  if ((await endpoint.queue.pending()) < total) throw new Error('events went missing');
  global.gc?.();
  await new Promise((r) => setTimeout(r, 200));
  const m = process.memoryUsage();
  console.log(JSON.stringify({ rssMb: m.rss / 2 ** 20, heapMb: m.heapUsed / 2 ** 20, seconds }));
  await new Promise((r) => process.once('SIGTERM', r));
  await endpoint.close();
  process.exit(0);
}

void main();
