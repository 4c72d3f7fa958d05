// Several replicas on one Redis queue: a dead one's entries taken over before new ones,
// dead consumers removed, and pending() per replica. Dead replicas are real processes
// killed with SIGKILL (redis-consumer-child.ts).
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import Redis from 'ioredis';
import { Queue } from '../../lib/deliver/queue';
import { RedisStore, type RedisStoreOptions } from '../../lib/stores/redis-store';
import { makeEvents } from '../helpers/events';
import { deletePrefix, describeWithRedis, REDIS_URL, uniquePrefix } from '../helpers/redis';
import { RecordingSink, StuckSink } from '../helpers/sinks';
import { waitFor } from '../helpers/wait';

const FOREVER_MS = 10 * 60 * 1000;
const never = () => new AbortController().signal;
const ids = (batch: readonly { event: { id: string } }[]) => batch.map((s) => s.event.id);

describeWithRedis('RedisStore with several replicas', () => {
  const prefix = uniquePrefix('redis-replicas');
  let queues = 0;
  let admin: Redis;
  const stores: RedisStore[] = [];
  const children: ChildProcess[] = [];
  beforeAll(() => {
    admin = new Redis(REDIS_URL);
  });
  afterEach(async () => {
    for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    await Promise.all(stores.splice(0).map((s) => s.close()));
  });
  afterAll(async () => {
    await admin.quit();
    await deletePrefix(prefix);
  });

  const connect = async (options: Partial<RedisStoreOptions> & { queue: string; consumer: string }) => {
    const store = await RedisStore.connect({ url: REDIS_URL, prefix, ...options });
    stores.push(store);
    return store;
  };

  /** A replica in a process of its own that takes up to `max` entries, holds them, and is then killed. */
  const replica = async (queue: string, consumer: string, claimIdleMs: number, max = 10) => {
    const child = spawn(
      process.execPath,
      ['-r', 'tsx/cjs', path.join(__dirname, 'redis-consumer-child.ts'), JSON.stringify({ url: REDIS_URL, prefix, queue, consumer, claimIdleMs, max })],
      { cwd: path.resolve(__dirname, '../..'), stdio: ['ignore', 'pipe', 'inherit'] },
    );
    children.push(child);
    const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on('exit', (_code, signal) => resolve(signal)));
    const took = await new Promise<string[]>((resolve, reject) => {
      let out = '';
      child.stdout!.on('data', (chunk: Buffer) => {
        out += chunk.toString('utf8');
        const line = /^took(.*)\n/m.exec(out);
        if (line) resolve(line[1].split(' ').filter(Boolean));
      });
      child.on('exit', (code) => reject(new Error(`replica ${consumer} exited (${code}) before taking`)));
    });
    return {
      took,
      kill: async () => {
        child.kill('SIGKILL');
        expect(await exited).toBe('SIGKILL');
      },
    };
  };

  /** Per consumer of the queue's group: [name, pending entries, idle ms]. */
  const consumers = async (key: string): Promise<[string, number, number][]> => {
    const rows = (await admin.call('XINFO', 'CONSUMERS', key, 'delivery')) as (string | number)[][];
    return rows.map((row) => {
      const f: Record<string, string | number> = {};
      for (let i = 0; i < row.length; i += 2) f[String(row[i])] = row[i + 1];
      return [String(f.name), Number(f.pending), Number(f.idle)];
    });
  };

  /** Entries `consumer` holds that have been idle at least `ms`. */
  const idleEntries = async (key: string, consumer: string, ms: number): Promise<number> =>
    ((await admin.call('XPENDING', key, 'delivery', 'IDLE', ms, '-', '+', 100, consumer)) as unknown[]).length;

  it('hands out what a killed replica held before anything newer, in one take, oldest first', async () => {
    const queue = `order-${++queues}`;
    const claimIdleMs = 1000;
    const live = await connect({ queue, consumer: 'live', claimIdleMs });
    const key = live.key;
    const older = makeEvents(3);
    await live.append(older);
    const dead = await replica(queue, 'dead', claimIdleMs);
    expect(dead.took).toEqual(older.map((e) => e.id));
    await dead.kill();

    // Half a claim timeout after the replica's last touch, the live one starts waiting for
    // new events: its read is blocked when the dead one's entries go idle.
    await waitFor(async () => (await idleEntries(key, 'dead', claimIdleMs / 2)) === 3);
    const taking = live.take(10, never(), FOREVER_MS);
    await waitFor(async () => / flags=\S*b\S* .* cmd=xreadgroup /.test(String(await admin.call('CLIENT', 'LIST', 'ID', String((live as unknown as { blockingId: number }).blockingId)))));
    await waitFor(async () => (await idleEntries(key, 'dead', claimIdleMs)) === 3);
    // A newer event arrives while that read still waits.
    const newer = makeEvents(1);
    await live.append(newer);

    const taken = await taking;
    expect(ids(taken)).toEqual([...older, ...newer].map((e) => e.id));
    expect(taken.map((t) => t.key)).toEqual([...taken.map((t) => t.key)].sort(compareIds));
    await live.ack(taken);
    expect(await live.pending()).toBe(0);
  });

  it('takes over a killed replica\'s entries before reading the ones appended after it died', async () => {
    const queue = `first-${++queues}`;
    const live = await connect({ queue, consumer: 'live', claimIdleMs: 200 });
    const older = makeEvents(4);
    await live.append(older);
    const dead = await replica(queue, 'dead', 200, 3); // takes three of the four
    await dead.kill();
    const newer = makeEvents(2);
    await live.append(newer);
    await waitFor(async () => (await idleEntries(live.key, 'dead', 200)) === 3);

    const order: string[] = [];
    for (let batch = await live.take(10, never(), 0); batch.length > 0; batch = await live.take(10, never(), 0)) {
      order.push(...ids(batch));
      await live.ack(batch);
    }
    expect(order).toEqual([...older, ...newer].map((e) => e.id));
  });

  it('removes a dead consumer that holds nothing, never one that holds entries', async () => {
    const queue = `gone-${++queues}`;
    // The live replica takes nothing over here (claimIdle: forever), so the killed
    // replica that took entries keeps them for as long as the test looks.
    const live = await connect({ queue, consumer: 'live', claimIdleMs: FOREVER_MS, removeConsumerIdleMs: 300 });
    const empty = await replica(queue, 'empty', FOREVER_MS); // the stream is empty: takes nothing
    expect(empty.took).toEqual([]);
    await live.append(makeEvents(2));
    const holder = await replica(queue, 'holder', FOREVER_MS);
    expect(holder.took).toHaveLength(2);
    await empty.kill();
    await holder.kill();

    await waitFor(async () => !(await consumers(live.key)).some(([name]) => name === 'empty'), {
      describe: () => consumers(live.key),
    });
    // Long past the limit, and many heartbeats later, the holder is still there, entries and all.
    await waitFor(async () => ((await consumers(live.key)).find(([name]) => name === 'holder')?.[2] ?? 0) > 1500, {
      describe: () => consumers(live.key),
    });
    expect((await consumers(live.key)).filter(([name]) => name !== 'live')).toEqual([['holder', 2, expect.any(Number)]]);
  });

  it('removes a killed replica once a live one has taken over what it held', async () => {
    const queue = `taken-over-${++queues}`;
    const live = await connect({ queue, consumer: 'live', claimIdleMs: 100, removeConsumerIdleMs: 300 });
    const events = makeEvents(3);
    await live.append(events);
    const dead = await replica(queue, 'dead', 100);
    await dead.kill();
    expect(ids(await live.take(10, never(), FOREVER_MS))).toEqual(events.map((e) => e.id));
    await waitFor(async () => (await consumers(live.key)).map(([name]) => name).join() === 'live', {
      describe: () => consumers(live.key),
    });
  });

  it('counts pending per replica: what it holds and what nobody has taken, not what another holds', async () => {
    const queue = `pending-${++queues}`;
    const a = await connect({ queue, consumer: 'a' });
    const b = await connect({ queue, consumer: 'b' });
    await a.append(makeEvents(10));
    expect([await a.pending(), await b.pending()]).toEqual([10, 10]);
    const takenByA = await a.take(4, never(), 0);
    expect([await a.pending(), await b.pending()]).toEqual([10, 6]);
    await b.take(6, never(), 0);
    expect([await a.pending(), await b.pending()]).toEqual([4, 6]);
    await a.ack(takenByA);
    expect([await a.pending(), await b.pending()]).toEqual([0, 6]);
  });

  it('shuts one replica down without waiting for the entries another live replica is delivering', async () => {
    const queue = `drain-${++queues}`;
    const storeA = await connect({ queue, consumer: 'a' });
    const storeB = await connect({ queue, consumer: 'b' });
    // Replica a's endpoint never answers: it holds what it took for as long as it lives.
    const stuck = new StuckSink();
    const queueA = new Queue(stuck, { store: storeA, drainTimeoutMs: 0 });
    const delivered = new RecordingSink();
    // Were b to wait for a's entries, only this drain timeout (a minute, past the test's
    // time limit) would end its close.
    const queueB = new Queue(delivered, { store: storeB, drainTimeoutMs: 60_000 });
    await storeA.append(makeEvents(5));
    await waitFor(async () => (await consumers(storeA.key)).some(([name, held]) => name === 'a' && held === 5), {
      describe: () => consumers(storeA.key),
    });

    let closed = false;
    const closing = queueB.close().then(() => (closed = true));
    await waitFor(() => closed, { describe: async () => `replica b still closing; its pending(): ${await storeB.pending().catch((e: Error) => e.message)}` });
    await closing;
    expect(delivered.events).toEqual([]);
    expect(await storeA.pending()).toBe(5);
    await queueA.close();
  });
});

/** Orders stream ids (`<ms>-<seq>`) numerically. */
function compareIds(x: string, y: string): number {
  const [xm, xs] = x.split('-').map(BigInt);
  const [ym, ys] = y.split('-').map(BigInt);
  return xm !== ym ? (xm < ym ? -1 : 1) : xs < ys ? -1 : xs > ys ? 1 : 0;
}
