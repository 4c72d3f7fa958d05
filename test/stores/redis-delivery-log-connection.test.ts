// The Redis delivery log connects as the Redis queue does (one shared connection per
// server and prefix, the URL's database selected, a failed first connection tried again
// on the next use) and names the server without its password when it cannot.
import { randomUUID } from 'node:crypto';
import Redis from 'ioredis';
import { FaultProxy } from '../helpers/fault-proxy';
import { describeWithRedis, REDIS_URL } from '../helpers/redis';
import { RedisDeliveryLog } from '../../lib/stores/redis-delivery-log';
import { StoreOpenError } from '../../lib/stores/queue-store';
import { LogClock, type LogEntry } from '../../lib/stores/delivery-log';
import { makeEvent } from '../helpers/events';

const redisPort = Number(new URL(REDIS_URL).port) || 6379;
/** Ids within the retention window (an id is a time). */
const clock = new LogClock();

function attempt(endpoint: string, id: string): LogEntry {
  return {
    kind: 'attempt',
    attempt: { id, time: new Date().toISOString(), endpoint, eventIds: [], attempt: 1, status: 200, error: null, latencyMs: 1, response: null, test: false },
  };
}

describeWithRedis('RedisDeliveryLog connection', () => {
  const logs: RedisDeliveryLog[] = [];
  const proxies: FaultProxy[] = [];
  const admin = new Redis(REDIS_URL);

  afterAll(async () => {
    await Promise.all(logs.map((l) => l.close()));
    await Promise.all(proxies.map((p) => p.stop()));
    admin.disconnect();
  });

  it('refuses to open when the server is down, naming it without the password', async () => {
    const proxy = await new FaultProxy(redisPort).start();
    proxies.push(proxy);
    proxy.mode = 'cut';
    const log = new RedisDeliveryLog({ url: `redis://:s3cret@127.0.0.1:${proxy.port}/0`, prefix: `t-${randomUUID()}`, connectTimeoutMs: 500 });
    logs.push(log);
    const err = await log.open().then(
      () => undefined,
      (e: Error) => e,
    );
    expect(err).toBeInstanceOf(StoreOpenError);
    expect(err!.message).toContain(`127.0.0.1:${proxy.port}`);
    expect(err!.message).toContain('delivery log');
    expect(err!.message).not.toContain('s3cret');
  });

  it('recovers when a server that was down at start answers later', async () => {
    const proxy = await new FaultProxy(redisPort).start();
    proxies.push(proxy);
    proxy.mode = 'cut';
    const prefix = `t-${randomUUID()}`;
    const log = new RedisDeliveryLog({ url: `redis://127.0.0.1:${proxy.port}`, prefix, connectTimeoutMs: 500 });
    logs.push(log);
    await expect(log.write([attempt('hook', String(clock.next()))])).rejects.toThrow();
    proxy.mode = 'pass';
    // A new try is made once the back-off after a failed open (1s) has passed.
    const id = String(clock.next());
    let written = false;
    for (let i = 0; i < 40 && !written; i++) {
      await new Promise((r) => setTimeout(r, 100));
      written = await log.write([attempt('hook', id)]).then(
        () => true,
        () => false,
      );
    }
    expect(written).toBe(true);
    const page = await log.attempts('hook', { limit: 10 });
    expect(page.items.map((a) => a.id)).toEqual([id]);
  });

  it("writes to the URL's database", async () => {
    const prefix = `t-${randomUUID()}`;
    const log = new RedisDeliveryLog({ url: `${REDIS_URL}/5`, prefix });
    logs.push(log);
    await log.open();
    const event = makeEvent();
    await log.write([{ kind: 'events', endpoint: 'hook', state: 'pending', events: [event], seq: clock.next(), at: Date.now() }]);
    const db5 = new Redis(`${REDIS_URL}/5`);
    try {
      expect(await db5.exists(`${prefix}:log:ev:hook`)).toBe(1);
      expect(await admin.exists(`${prefix}:log:ev:hook`)).toBe(0);
      await db5.del(`${prefix}:log:ev:hook`, `${prefix}:log:e:hook:${event.id}`);
    } finally {
      db5.disconnect();
    }
  });

  it('shares one connection between the logs of one server and prefix', async () => {
    const prefix = `t-${randomUUID()}`;
    const a = new RedisDeliveryLog({ url: REDIS_URL, prefix });
    const b = new RedisDeliveryLog({ url: REDIS_URL, prefix });
    logs.push(a, b);
    await a.open();
    await b.open();
    const list = (await admin.client('LIST')) as string;
    const named = list.split('\n').filter((line) => line.includes(`name=${prefix}:log `));
    expect(named).toHaveLength(1);
  });
});
