import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { encodeEvent } from '../../lib/codec/envelope';
import { MemoryStore } from '../../lib/stores/memory-store';
import { RedisStore } from '../../lib/stores/redis-store';
import { SqliteStore } from '../../lib/stores/sqlite-store';
import { refusableAppends, SpoolingStore, StoreUnavailableError, type AppendRefusals } from '../../lib/stores/spooling-store';
import { makeEvents } from '../helpers/events';
import { FaultProxy } from '../helpers/fault-proxy';
import { deletePrefix, describeWithRedis, REDIS_URL, uniquePrefix } from '../helpers/redis';
import { waitFor } from '../helpers/wait';
import { describeStoreContract } from './store-contract';
import { createEndpointStores, spoolFileOf } from '../../lib/stores/create-stores';
import { normalizeQueue } from '../../lib/config/normalize';
import type { QueueStore } from '../../lib/stores/queue-store';

const never = () => new AbortController().signal;
const ids = (batch: readonly { event: { id: string } }[]) => batch.map((s) => s.event.id);

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'spool-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe('SpoolingStore', () => {
  describeStoreContract(
    'SpoolingStore over SQLite',
    () => new SpoolingStore(new SqliteStore({ path: path.join(dir, 'q.db'), queue: 'hook' }), { file: path.join(dir, 'hook.spool') }),
    () => new SpoolingStore(new SqliteStore({ path: path.join(dir, 'q.db'), queue: 'hook' }), { file: path.join(dir, 'hook.spool') }),
  );

  it('forwards a spool left by a previous run, in order, reporting a line cut short by a crash and keeping the rest', async () => {
    const [a, b, c, d] = makeEvents(4);
    const line = (seq: number, events: typeof a[]) => `{"seq":${seq},"events":[${events.map((e) => encodeEvent(e, { indent: false, withKind: true })).join(',')}]}\n`;
    const file = path.join(dir, 'hook.spool');
    // Batch 1 reached the store (done), 2 and 3 did not, 4 was being written when the process died.
    const torn = line(4, makeEvents(1)).slice(0, 40);
    writeFileSync(file, line(1, [a]) + line(2, [b, c]) + '{"done":1}\n' + line(3, [d]) + torn);
    const reports: string[] = [];
    const store = new SpoolingStore(new MemoryStore(), { file, onError: (err) => reports.push(err.message) });
    expect(await store.pending()).toBe(3);
    expect(reports[0]).toMatch(/line 5 is incomplete \(the process ended while writing it\).*skipped, copied to .*hook\.spool\.damaged/);
    expect(readFileSync(`${file}.damaged`, 'utf8')).toBe(torn + '\n');
    await waitFor(() => !existsSync(file));
    expect(ids(await store.take(10, never(), 0))).toEqual([b.id, c.id, d.id]);
    await store.close();
  });

  it('keeps the kind of a blob delete through the spool', async () => {
    const [e] = makeEvents(1, 'delete');
    e.kind = 'blob';
    const file = path.join(dir, 'hook.spool');
    writeFileSync(file, `{"seq":7,"events":[${encodeEvent(e, { indent: false, withKind: true })}]}\n`);
    const store = new SpoolingStore(new MemoryStore(), { file });
    await waitFor(async () => (await store.store.pending()) === 1);
    const [taken] = await store.take(1, never(), 0);
    expect(taken.event).toEqual(e);
    await store.close();
  });
});

describe('spool files of endpoint queues', () => {
  const spoolLine = (seq: number, events: ReturnType<typeof makeEvents>) =>
    `{"seq":${seq},"events":[${events.map((e) => encodeEvent(e, { indent: false, withKind: true })).join(',')}]}\n`;
  const sqliteQueue = (file: string) => normalizeQueue({ type: 'sqlite', path: path.join(dir, file), spoolDir: path.join(dir, 'spool') });
  /** The events a queue forwarded from `spool` (gone once forwarded), as the queue hands them out. */
  const forwarded = async (queue: QueueStore, spool: string) => {
    await waitFor(() => !existsSync(spool));
    return ids(await queue.take(10, never(), 0));
  };

  it('are named by endpoint and store, so that another store with the same endpoint name never forwards them', async () => {
    const a = sqliteQueue('a.db');
    const b = sqliteQueue('b.db');
    const redis = (prefix: string, url = 'redis://127.0.0.1:6379/2') => normalizeQueue({ type: 'redis', url, prefix, spoolDir: a.spoolDir });
    expect(path.basename(spoolFileOf(a, 'hook'))).toMatch(/^hook-[0-9a-f]{12}\.spool$/);
    expect(spoolFileOf(a, 'hook')).toBe(spoolFileOf(sqliteQueue('a.db'), 'hook'));
    expect(new Set([spoolFileOf(a, 'hook'), spoolFileOf(b, 'hook'), spoolFileOf(a, 'other'), spoolFileOf(redis('x'), 'hook'), spoolFileOf(redis('y'), 'hook')]).size).toBe(5);
    // The password is not part of the store: changing it keeps the spool.
    expect(spoolFileOf(redis('x', 'redis://:old@127.0.0.1:6379/2'), 'hook')).toBe(spoolFileOf(redis('x', 'redis://:new@127.0.0.1:6379/2'), 'hook'));

    // A spool store A's process left behind, in the working directory both share.
    const events = makeEvents(2);
    mkdirSync(a.spoolDir, { recursive: true });
    writeFileSync(spoolFileOf(a, 'hook'), spoolLine(1, events));
    const ofB = createEndpointStores(b, 'hook', 'test');
    expect(await ofB.queue.pending()).toBe(0);
    expect(ids(await ofB.queue.take(10, never(), 0))).toEqual([]);
    await ofB.queue.close();
    expect(existsSync(spoolFileOf(a, 'hook'))).toBe(true);
    const ofA = createEndpointStores(a, 'hook', 'test');
    expect(await forwarded(ofA.queue, spoolFileOf(a, 'hook'))).toEqual(events.map((e) => e.id));
    await ofA.queue.close();
  });

  it("adopts a spool an earlier version named by the endpoint alone, once", async () => {
    const a = sqliteQueue('a.db');
    const events = makeEvents(3);
    mkdirSync(a.spoolDir, { recursive: true });
    const unnamed = path.join(a.spoolDir, 'hook.spool');
    writeFileSync(unnamed, spoolLine(1, events));
    const stores = createEndpointStores(a, 'hook', 'test');
    expect(existsSync(unnamed)).toBe(false);
    expect(await forwarded(stores.queue, spoolFileOf(a, 'hook'))).toEqual(events.map((e) => e.id));
    await stores.queue.close();
    // Adopted by the first store: another one started later finds nothing.
    const other = createEndpointStores(sqliteQueue('other.db'), 'hook', 'test');
    expect(await other.queue.pending()).toBe(0);
    await other.queue.close();
  });
});

describeWithRedis('SpoolingStore over Redis, through a link that is cut', () => {
  let proxy: FaultProxy;
  let prefix: string;
  let inner: RedisStore;
  let store: SpoolingStore;
  const reports: string[] = [];
  const file = () => path.join(dir, 'hook.spool');
  beforeEach(async () => {
    prefix = uniquePrefix('spool');
    proxy = await new FaultProxy(Number(new URL(REDIS_URL).port) || 6379, new URL(REDIS_URL).hostname).start();
    inner = await RedisStore.connect({ url: `redis://127.0.0.1:${proxy.port}`, prefix, queue: 'hook', consumer: 'one', onConnectionError: () => undefined });
    reports.length = 0;
    store = new SpoolingStore(inner, { file: file(), commitTimeoutMs: 50, onError: (err) => reports.push(err.message) });
  });
  afterEach(async () => {
    proxy.restore();
    await store.close();
    await proxy.stop();
    await deletePrefix(prefix);
  });

  it('spools what the store cannot take in time, puts later appends behind it, and forwards all in order once it is back', async () => {
    const events = makeEvents(6);
    proxy.cut();
    for (const e of events) await store.append([e]); // the first waits 50ms, the rest go straight behind it
    expect(store.spooled).toBe(6);
    const lines = readFileSync(file(), 'utf8').trim().split('\n');
    expect(lines.map((l) => JSON.parse(l).events[0].id)).toEqual(events.map((e) => e.id));
    expect(reports).toEqual([expect.stringMatching(/cannot take events \(no answer within 50ms\); keeping them in .*hook\.spool until it can/)]);
    proxy.restore();
    await waitFor(() => !existsSync(file()));
    // The first append reached Redis on reconnect by itself; it is not forwarded a second time.
    expect(ids(await store.take(10, never(), 0))).toEqual(events.map((e) => e.id));
    expect(await inner.pending()).toBe(6);
    expect(reports[reports.length - 1]).toMatch(/takes events again; 5 spooled events forwarded/);
  });

  it('closes while the store is away, leaving the spool for the next start, which forwards it', async () => {
    const events = makeEvents(3);
    proxy.cut();
    for (const e of events) await store.append([e]);
    await store.close();
    expect(readFileSync(file(), 'utf8').trim().split('\n')).toHaveLength(3);
    proxy.restore();
    const next = await RedisStore.connect({ url: REDIS_URL, prefix, queue: 'hook', consumer: 'two' });
    store = new SpoolingStore(next, { file: file(), onError: (err) => reports.push(err.message) });
    await waitFor(() => !existsSync(file()));
    // At least once: the first append may have reached Redis on its own before the close.
    expect([...new Set(ids(await store.take(10, never(), 0)))]).toEqual(events.map((e) => e.id));
    expect(reports).toContainEqual(expect.stringMatching(/3 events left in the spool .* by a previous run; forwarding them/));
  });

  it('refuses instead, for a writer that asked, and never hands out refused events that reached the store late', async () => {
    const [refused, later] = makeEvents(2);
    proxy.cut();
    const refusals: AppendRefusals = {};
    await expect(refusableAppends(refusals, [refused], () => store.append([refused]))).rejects.toThrow(StoreUnavailableError);
    expect(refusals.refused?.message).toMatch(/1 event refused: no answer within 50ms/);
    expect(existsSync(file())).toBe(false);
    proxy.restore();
    await waitFor(async () => (await inner.pending()) === 1); // the refused XADD was resent on reconnect
    await store.append([later]);
    expect(ids(await store.take(10, never(), 0))).toEqual([later.id]);
  });
});
