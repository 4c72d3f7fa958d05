import { createServer } from 'node:net';
import Redis from 'ioredis';
import { encodeEnvelope } from '../../lib/codec/envelope';
import { RedisStore, type RedisStoreOptions } from '../../lib/stores/redis-store';
import { StoreClosedError, StoreCorruptError, StoreOpenError, type EndpointControl } from '../../lib/stores/queue-store';
import { makeEvent, makeEvents } from '../helpers/events';
import { deletePrefix, describeWithRedis, REDIS_URL, uniquePrefix } from '../helpers/redis';
import { RedisDeadLetterStore } from '../../lib/stores/redis-dead-letters';
import { describeDeadLetterContract, describeStoreContract, drain } from './store-contract';
import { sleep, waitFor } from '../helpers/wait';

const FOREVER_MS = 10 * 60 * 1000;
const never = () => new AbortController().signal;
const ids = (batch: readonly { event: { id: string } }[]) => batch.map((s) => s.event.id);

describeWithRedis('RedisStore', () => {
  const prefix = uniquePrefix('redis-store');
  let queues = 0;
  afterAll(() => deletePrefix(prefix));

  describeStoreContract(
    'RedisStore',
    () => RedisStore.connect({ url: REDIS_URL, prefix, queue: `contract-${++queues}`, consumer: 'replica-1' }),
    // The same queue (its stream key is `<prefix>:queue:<queue>`), as a restarted replica opens it.
    (closed) =>
      RedisStore.connect({ url: REDIS_URL, prefix, queue: (closed as RedisStore).key.slice(`${prefix}:queue:`.length), consumer: 'replica-1' }),
  );

  describeDeadLetterContract('RedisDeadLetterStore', () => new RedisDeadLetterStore({ url: REDIS_URL, prefix, queue: `dead-${++queues}` }));

  describe('with several replicas', () => {
    const stores: RedisStore[] = [];
    const connect = async (options: Partial<RedisStoreOptions>) => {
      const store = await RedisStore.connect({ url: REDIS_URL, prefix, queue: 'unset', ...options });
      stores.push(store);
      return store;
    };
    let admin: Redis;
    beforeAll(() => {
      admin = new Redis(REDIS_URL);
    });
    afterAll(() => admin.quit());
    /** CLIENT LIST's line for the store's blocking connection, whose id the store keeps to itself. */
    const blockingConnection = async (store: RedisStore): Promise<string> => {
      const id = (store as unknown as { blockingId?: number }).blockingId;
      return id === undefined ? '(no blocking connection id)' : String(await admin.call('CLIENT', 'LIST', 'ID', String(id))).trim();
    };
    afterEach(async () => {
      await Promise.all(stores.splice(0).map((s) => s.close()));
    });

    it('gives two consumers of one queue disjoint events, each exactly once', async () => {
      const queue = `disjoint-${++queues}`;
      const a = await connect({ queue, consumer: 'a' });
      const b = await connect({ queue, consumer: 'b' });
      const events = makeEvents(30);
      await a.append(events);

      const takenByA = await a.take(5, never(), 0);
      const takenByB = await b.take(5, never(), 0);
      expect(takenByA).toHaveLength(5);
      expect(takenByB).toHaveLength(5);
      expect(ids(takenByA).filter((id) => ids(takenByB).includes(id))).toEqual([]);
      await a.ack(takenByA);
      await b.ack(takenByB);

      const seen = [...ids(takenByA), ...ids(takenByB)];
      for (let turn = 0; (await a.pending()) > 0; turn++) {
        const store = turn % 2 ? a : b;
        const batch = await store.take(4, never(), 0);
        seen.push(...ids(batch));
        await store.ack(batch);
      }
      expect([...seen].sort()).toEqual(events.map((e) => e.id).sort());
    });

    it('lets a live consumer take over what a dead one took and never acknowledged', async () => {
      const queue = `reclaim-${++queues}`;
      const dead = await connect({ queue, consumer: 'dead', claimIdleMs: 50 });
      const live = await connect({ queue, consumer: 'live', claimIdleMs: 50 });
      const events = makeEvents(3);
      await dead.append(events);
      expect(ids(await dead.take(10, never(), 0))).toEqual(events.map((e) => e.id));
      await dead.close(); // it dies: its entries stay in the group, unacknowledged

      // Nothing new arrives: only taking over the idle entries can end this wait.
      const reclaimed = await live.take(10, never(), FOREVER_MS);
      expect(ids(reclaimed)).toEqual(events.map((e) => e.id));
      await live.ack(reclaimed);
      expect(await live.pending()).toBe(0);
      const revived = await connect({ queue, consumer: 'dead', claimIdleMs: 50 });
      expect(await revived.take(10, never(), 0)).toEqual([]);
    });

    it('keeps the entries a live consumer holds, however long past claimIdleMs it works on them', async () => {
      const queue = `slow-${++queues}`;
      const slow = await connect({ queue, consumer: 'slow', claimIdleMs: 100 });
      const other = await connect({ queue, consumer: 'other', claimIdleMs: 100 });
      const events = makeEvents(2);
      await slow.append(events);
      expect(await slow.take(10, never(), 0)).toHaveLength(2);
      // Negative window: four claim timeouts later the slow consumer still holds them...
      await sleep(400);
      expect(await other.take(10, never(), 0)).toEqual([]);
      // ...until it stops: then the other consumer takes them over.
      await slow.close();
      expect(ids(await other.take(10, never(), FOREVER_MS))).toEqual(events.map((e) => e.id));
    });

    it('does not take over entries that have not been idle for claimIdleMs', async () => {
      const queue = `busy-${++queues}`;
      const busy = await connect({ queue, consumer: 'busy', claimIdleMs: FOREVER_MS });
      const other = await connect({ queue, consumer: 'other', claimIdleMs: FOREVER_MS });
      await busy.append(makeEvents(2));
      expect(await busy.take(10, never(), 0)).toHaveLength(2);
      expect(await other.take(10, never(), 0)).toEqual([]);
    });

    it('gives a restarted consumer its own unacknowledged entries back at once', async () => {
      const queue = `restart-${++queues}`;
      const before = await connect({ queue, consumer: 'replica-7', claimIdleMs: FOREVER_MS });
      const events = makeEvents(4);
      await before.append(events);
      const taken = await before.take(3, never(), 0);
      await before.close();

      const after = await connect({ queue, consumer: 'replica-7', claimIdleMs: FOREVER_MS });
      expect(ids(await after.take(10, never(), 0))).toEqual(ids(taken));
      expect(encodeEnvelope(await drain(after))).toBe(encodeEnvelope(events));
      expect(await after.pending()).toBe(0);
    });

    it('trims the stream on ack, leaving nothing pending in the group', async () => {
      const queue = `trim-${++queues}`;
      const store = await connect({ queue, consumer: 'c' });
      await store.append(makeEvents(10));
      await store.ack(await store.take(6, never(), 0));
      expect(await admin.xlen(store.key)).toBe(4);
      const summary = (await admin.xpending(store.key, 'delivery')) as [number, ...unknown[]];
      expect(summary[0]).toBe(0);
      expect(store.key).toBe(`${prefix}:queue:${queue}`);
    });

    it('ends a waiting take with nothing when closed, then refuses use', async () => {
      const store = await connect({ queue: `close-${++queues}`, consumer: 'c' });
      const taking = store.take(5, never(), FOREVER_MS);
      // Until its XREADGROUP blocks in Redis.
      await waitFor(async () => / flags=\S*b\S* .* cmd=xreadgroup /.test(await blockingConnection(store)), { describe: () => blockingConnection(store) });
      await store.close();
      await expect(taking).resolves.toEqual([]);
      await expect(store.append(makeEvents(1))).rejects.toBeInstanceOf(StoreClosedError);
      await expect(store.close()).resolves.toBeUndefined();
    });

    it('moves an entry that is not an event aside and reports it', async () => {
      const queue = `corrupt-${++queues}`;
      const reports: Error[] = [];
      const store = await connect({ queue, consumer: 'c', onCorrupt: (err) => reports.push(err) });
      const good = makeEvent();
      await admin.xadd(store.key, '*', 'event', '{"id":"x","times');
      await store.append([good]);
      expect((await drain(store)).map((e) => e.id)).toEqual([good.id]);
      expect(reports).toHaveLength(1);
      expect(reports[0].message).toMatch(/JSON.*; moved to .*:corrupt:corrupt-\d+$/);
      expect(await admin.xlen(`${prefix}:corrupt:${queue}`)).toBe(1);
    });

    it('recreates its group when the stream is deleted under it', async () => {
      const store = await connect({ queue: `deleted-${++queues}`, consumer: 'c' });
      await admin.del(store.key);
      const event = makeEvent();
      await store.append([event]);
      expect(ids(await store.take(5, never(), 0))).toEqual([event.id]);
    });

    it('uses a client it is given and leaves it open', async () => {
      const client = new Redis(REDIS_URL);
      try {
        const store = new RedisStore({ client, prefix, queue: `client-${++queues}`, consumer: 'c' });
        const event = makeEvent();
        await store.append([event]);
        expect(ids(await store.take(1, never(), 0))).toEqual([event.id]);
        await store.close();
        await expect(client.ping()).resolves.toBe('PONG');
      } finally {
        await client.quit();
      }
    });
  });

  it('drains a backlog in one request to Redis per take and one per ack', async () => {
    const client = new Redis(REDIS_URL);
    const store = new RedisStore({ client, prefix, queue: `requests-${++queues}`, consumer: 'c' });
    try {
      const events = makeEvents(1000);
      await store.append(events);
      // Each command, or pipeline of them, is one write to the connection's socket.
      let requests = 0;
      const socket = client.stream;
      const write = socket.write.bind(socket) as (...args: unknown[]) => boolean;
      socket.write = ((...args: unknown[]) => (requests++, write(...args))) as typeof socket.write;
      const taken: string[] = [];
      for (let batch = await store.take(100, never(), 0); batch.length > 0; batch = await store.take(100, never(), 0)) {
        taken.push(...ids(batch));
        await store.ack(batch);
      }
      expect(taken).toEqual(events.map((e) => e.id));
      // Ten takes and ten acks; the first take also reads the pending list (the store
      // knows nothing of it yet), and the last finds nothing new.
      expect(requests).toBe(10 + 10 + 1 + 1);
    } finally {
      await store.close();
      await client.quit();
    }
  });

  describe('endpoint control', () => {
    const stores: RedisStore[] = [];
    const open = async (queue: string) => {
      const store = await RedisStore.connect({ url: REDIS_URL, prefix, queue, consumer: 'c' });
      stores.push(store);
      return store;
    };
    afterEach(async () => {
      await Promise.all(stores.splice(0).map((s) => s.close()));
    });
    const gone: EndpointControl = { state: 'gone', reason: 'HTTP 410 from https://hooks.example/registry', since: '2026-01-02T03:04:05.000Z' };

    it('keeps the control across a restart, per queue, until it is cleared', async () => {
      const queue = `control-${++queues}`;
      const store = await open(queue);
      expect(await store.loadControl()).toBeUndefined();
      await store.saveControl(gone);
      await store.close();

      const restarted = await open(queue);
      expect(await restarted.loadControl()).toEqual(gone);
      expect(await (await open(`control-${++queues}`)).loadControl()).toBeUndefined();
      const paused: EndpointControl = { state: 'paused', reason: 'paused by an operator', since: '2026-01-02T04:00:00.000Z' };
      await restarted.saveControl(paused);
      expect(await restarted.loadControl()).toEqual(paused);
      await restarted.saveControl(undefined);
      expect(await (await open(queue)).loadControl()).toBeUndefined();
    });

    it('says the control is damaged when its key holds something else', async () => {
      const admin = new Redis(REDIS_URL);
      try {
        const store = await open(`control-${++queues}`);
        await admin.set(`${prefix}:control:control-${queues}`, '{"state":"sleeping"}');
        await expect(store.loadControl()).rejects.toBeInstanceOf(StoreCorruptError);
        await admin.set(`${prefix}:control:control-${queues}`, 'not json');
        await expect(store.loadControl()).rejects.toThrow(/the store is damaged \(.*:control:control-\d+ is not JSON\)/);
      } finally {
        await admin.quit();
      }
    });
  });

  describe('connecting', () => {
    it('names the store and address when nothing listens there', async () => {
      const server = createServer();
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      const { port } = server.address() as { port: number };
      await new Promise((r) => server.close(r));

      const opening = RedisStore.connect({ url: `redis://127.0.0.1:${port}`, queue: 'q' });
      await expect(opening).rejects.toBeInstanceOf(StoreOpenError);
      await expect(opening).rejects.toThrow(
        `redis store at redis://127.0.0.1:${port}: connect ECONNREFUSED 127.0.0.1:${port}`,
      );
    });

    it('gives up after connectTimeoutMs when the server never answers', async () => {
      // A TCP server that accepts and says nothing, like a hung Redis.
      const sockets: import('node:net').Socket[] = [];
      const server = createServer((s) => sockets.push(s));
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      const { port } = server.address() as { port: number };
      try {
        await expect(
          RedisStore.connect({ url: `redis://127.0.0.1:${port}`, queue: 'q', connectTimeoutMs: 100 }),
        ).rejects.toThrow(`redis store at redis://127.0.0.1:${port}: no answer to PING within 100ms`);
      } finally {
        sockets.forEach((s) => s.destroy());
        await new Promise((r) => server.close(r));
      }
    });

    it('keeps a password out of its description', async () => {
      const store = new RedisStore({ url: 'redis://user:secret@127.0.0.1:6379/2', queue: 'q' });
      expect(store.description).toBe('redis://127.0.0.1:6379/2');
      await store.close();
    });
  });
});
