// The Redis stores' connections: one shared by every endpoint of a URL (plus one blocking
// reader per queue), closed with the last store, and a first connection that failed is
// tried again. Redis is reached through a TCP proxy this test starts and stops; the
// server itself is never touched.
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Redis from 'ioredis';
import { parseNotificationsConfig } from '../../lib';
import { Queue } from '../../lib/deliver/queue';
import { createEndpointStores, type EndpointStores } from '../../lib/stores/create-stores';
import { RedisDeadLetterStore } from '../../lib/stores/redis-dead-letters';
import { RedisStore } from '../../lib/stores/redis-store';
import { StoreOpenError } from '../../lib/stores/queue-store';
import { makeEvents } from '../helpers/events';
import { deletePrefix, describeWithRedis, REDIS_URL, uniquePrefix } from '../helpers/redis';
import { RecordingSink } from '../helpers/sinks';
import { SwitchableProxy } from '../helpers/tcp-proxy';
import { waitFor } from '../helpers/wait';

const never = () => new AbortController().signal;
const ids = (batch: readonly { event: { id: string } }[]) => batch.map((s) => s.event.id);

/** A proxy to the tests' Redis whose port can be closed (`cut()`) and opened again (`restore()`). */
const redisProxy = () => new SwitchableProxy(Number(new URL(REDIS_URL).port) || 6379).start();
const urlOf = (proxy: SwitchableProxy) => `redis://127.0.0.1:${proxy.port}`;

describeWithRedis('Redis store connections', () => {
  const prefix = uniquePrefix('redis-conn');
  let admin: Redis;
  const cleanup: Array<() => Promise<unknown>> = [];
  beforeAll(() => {
    admin = new Redis(REDIS_URL);
  });
  afterEach(async () => {
    for (const f of cleanup.splice(0).reverse()) await f();
  });
  afterAll(async () => {
    await admin.quit();
    // The sharing tests use prefixes of their own, `<prefix>-<test>`.
    for (const p of [prefix, `${prefix}-bounded`, `${prefix}-refcount`, `${prefix}-per-url`]) await deletePrefix(p);
  });

  /** The names of the server's connections whose name starts with `name`. */
  const connectionsNamed = async (name: string): Promise<string[]> =>
    String(await admin.call('CLIENT', 'LIST'))
      .split('\n')
      .map((line) => / name=(\S*)/.exec(line)?.[1] ?? '')
      .filter((n) => n === name || n.startsWith(`${name}:`))
      .sort();

  describe('after a first connection that failed', () => {
    it('connects once Redis answers, and delivers', async () => {
      // Started once to get a port, then stopped: Redis is "down" at start-up.
      const proxy = await redisProxy();
      await proxy.cut();
      cleanup.push(() => proxy.stop());
      const store = new RedisStore({ url: urlOf(proxy), prefix, queue: 'late', consumer: 'c', connectTimeoutMs: 500 });
      cleanup.push(() => store.close());
      await expect(store.open()).rejects.toBeInstanceOf(StoreOpenError);
      await expect(store.append(makeEvents(1))).rejects.toThrow(/ECONNREFUSED/);

      await proxy.restore(); // the same address answers now
      const events = makeEvents(3);
      // Uses within a second of the last failure fail at once; the first one after connects.
      await waitFor(() => store.append(events).then(() => true, () => false));
      expect(ids(await store.take(10, never(), 0))).toEqual(events.map((e) => e.id));
      expect(await store.pending()).toBe(3);
    });

    it('lets a queue whose store was unreachable at start deliver once it is back', async () => {
      const proxy = await redisProxy();
      await proxy.cut();
      cleanup.push(() => proxy.stop());
      const errors: Error[] = [];
      const store = new RedisStore({ url: urlOf(proxy), prefix, queue: 'late-queue', consumer: 'c', connectTimeoutMs: 500 });
      const sink = new RecordingSink();
      const queue = new Queue(sink, { store, onError: (err) => errors.push(err), drainTimeoutMs: 0 });
      cleanup.push(() => queue.close());
      const events = makeEvents(2);
      await expect(queue.write(events)).rejects.toBeInstanceOf(StoreOpenError);
      await waitFor(() => errors.length > 0); // the delivery loop's takes fail too

      await proxy.restore();
      await waitFor(() => queue.write(events).then(() => true, () => false));
      await sink.received(2);
      expect(sink.events.map((e) => e.id)).toEqual(events.map((e) => e.id));
    });

    it('lets a dead-letter store reach Redis once it answers', async () => {
      const proxy = await redisProxy();
      await proxy.cut();
      cleanup.push(() => proxy.stop());
      const dead = new RedisDeadLetterStore({ url: urlOf(proxy), prefix, queue: 'late-dead', connectTimeoutMs: 500 });
      cleanup.push(() => dead.close());
      const failed = dead.add(makeEvents(1), 'gave up');
      await expect(failed).rejects.toBeInstanceOf(StoreOpenError);
      await expect(failed).rejects.toThrow(`redis store at ${urlOf(proxy)} (${prefix}:dead:late-dead): connect ECONNREFUSED 127.0.0.1:${proxy.port}`);
      await proxy.restore();
      await waitFor(() => dead.add(makeEvents(2), 'gave up').then(() => true, () => false));
      expect(await dead.count()).toBe(2);
    });
  });

  describe('after the link to Redis was lost', () => {
    it('goes on taking and delivering once Redis answers again', async () => {
      const proxy = await redisProxy();
      cleanup.push(() => proxy.stop());
      const store = await RedisStore.connect({ url: urlOf(proxy), prefix, queue: 'cut', consumer: 'c' });
      const sink = new RecordingSink();
      const queue = new Queue(sink, { store, drainTimeoutMs: 0 });
      cleanup.push(() => queue.close());
      const before = makeEvents(3);
      await queue.write(before);
      await sink.received(3);

      await proxy.cut(); // every connection dropped, new ones refused
      // Until the store's shared connection has noticed.
      const shared = () => (store as unknown as { main: { client: Redis } }).main.client;
      await waitFor(() => shared().status !== 'ready');
      await proxy.restore();
      const after = makeEvents(3);
      await waitFor(() => queue.write(after).then(() => true, () => false));
      await sink.received(6);
      expect(sink.events.map((e) => e.id)).toEqual([...before, ...after].map((e) => e.id));
    });
  });

  describe('shared between endpoints', () => {
    const N = 6;
    let spooldir: string;
    beforeAll(() => {
      spooldir = mkdtempSync(path.join(os.tmpdir(), 'redis-conn-spool-'));
    });
    afterAll(() => rmSync(spooldir, { recursive: true, force: true }));
    const config = (name: string) =>
      parseNotificationsConfig({ queue: { type: 'redis', url: REDIS_URL, prefix: `${prefix}-${name}`, spooldir } }).queue;

    const openAll = async (name: string): Promise<EndpointStores[]> => {
      const all = Array.from({ length: N }, (_, i) => createEndpointStores(config(name), `endpoint-${i}`, 'replica-1'));
      cleanup.push(() => Promise.all(all.flatMap((s) => [s.queue.close(), s.deadLetters.close()])));
      // Use every store: connect each queue, write a dead letter through each.
      for (const s of all) {
        await s.queue.open!();
        await s.deadLetters.add(makeEvents(1), 'test');
      }
      return all;
    };

    it('opens one connection for all queues and dead letters of a URL, plus one blocking reader per queue', async () => {
      await openAll('bounded');
      const name = `${prefix}-bounded`;
      const names = await connectionsNamed(name);
      expect(names.filter((n) => n === name)).toHaveLength(1);
      expect(names.filter((n) => n !== name)).toEqual(Array.from({ length: N }, (_, i) => `${name}:take:endpoint-${i}`).sort());
    });

    it('keeps the shared connection while a store uses it, and closes it with the last one', async () => {
      const all = await openAll('refcount');
      const name = `${prefix}-refcount`;
      const [last, ...others] = all;
      await Promise.all(others.flatMap((s) => [s.queue.close(), s.deadLetters.close()]));
      await last.deadLetters.close();
      // The last queue still works over the shared connection.
      const events = makeEvents(2);
      await last.queue.append(events);
      expect(ids(await last.queue.take(10, never(), 0))).toEqual(events.map((e) => e.id));
      expect(await connectionsNamed(name)).toEqual([name, `${name}:take:endpoint-0`]);

      await last.queue.close();
      await waitFor(async () => (await connectionsNamed(name)).length === 0, { describe: () => connectionsNamed(name) });
    });

    it('shares nothing across URLs: another database gets its own connection', async () => {
      const name = `${prefix}-per-url`;
      const base = REDIS_URL.replace(/\/\d*$/, '');
      const a = new RedisDeadLetterStore({ url: `${base}/0`, queue: 'x', prefix: name });
      const b = new RedisDeadLetterStore({ url: `${base}/1`, queue: 'x', prefix: name });
      cleanup.push(() => a.close(), () => b.close());
      await a.add(makeEvents(1), 'r');
      expect(await b.count()).toBe(0); // database 1 has none: not the same connection
      expect(await connectionsNamed(name)).toEqual([name, name]);
    });
  });
});
