// A registry replica's consumer of one RedisStore queue, as far as the Redis tests need
// it: opens the store, takes once (printing `took <id> <id> …`, possibly none) and then
// lives on, holding what it took, until killed. redis-replicas.test.ts kills it with
// SIGKILL to leave a dead consumer in the group.
//
//   node -r tsx/cjs redis-consumer-child.ts '{"url":"redis://…","prefix":"…","queue":"q","consumer":"dead","claimIdleMs":1000,"max":10}'
import { RedisStore } from '../../lib/stores/redis-store';

const opts = JSON.parse(process.argv[2]) as { url: string; prefix: string; queue: string; consumer: string; claimIdleMs: number; max: number };

void (async () => {
  const store = await RedisStore.connect({ url: opts.url, prefix: opts.prefix, queue: opts.queue, consumer: opts.consumer, claimIdleMs: opts.claimIdleMs });
  const taken = await store.take(opts.max, new AbortController().signal, 0);
  process.stdout.write(`took${taken.map((t) => ` ${t.event.id}`).join('')}\n`);
  // Stay alive (the store's heartbeat keeps touching what it holds) until killed.
  setInterval(() => undefined, 60_000);
})().catch((err: Error) => {
  process.stderr.write(`redis consumer: ${err.stack}\n`);
  process.exit(1);
});
