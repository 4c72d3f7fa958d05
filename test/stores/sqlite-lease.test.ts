// One consumer per SQLite queue: the lease in the file. Real processes on a real file
// (a rolling restart, a holder killed with SIGKILL), and stores side by side in one process.
import { hostname } from 'node:os';
import Database from 'better-sqlite3';
import { SqliteStore } from '../../lib/stores/sqlite-store';
import { makeEvent, makeEvents } from '../helpers/events';
import { Consumer, killConsumers } from './sqlite-consumer';
import type { Event } from '../../lib/model/event';
import { sqliteFiles } from '../helpers/sqlite-files';

const FOREVER_MS = 10 * 60 * 1000;
const never = () => new AbortController().signal;
const ids = (events: readonly Event[]) => events.map((e) => e.id);

const { newFile, open } = sqliteFiles('lease', { beforeClose: killConsumers });

/** The lease row of a queue, as a person would look at it. */
function leaseOf(file: string, queue = 'hooks'): { holder: string; expires_at: number } | undefined {
  const db = new Database(file, { readonly: true });
  try {
    return db.prepare('SELECT holder, expires_at FROM queue_leases WHERE queue = ?').get(queue) as
      | { holder: string; expires_at: number }
      | undefined;
  } finally {
    db.close();
  }
}

/** Resolves once the queue is empty: every event acknowledged, by whichever consumer. */
async function drained(store: SqliteStore): Promise<void> {
  while ((await store.pending()) > 0) await new Promise((r) => setTimeout(r, 10));
}

describe('SqliteStore lease: one consumer per queue', () => {
  it('in a rolling restart, the new process appends at once, delivers nothing until the old one closes, then takes over: each event once, in order', async () => {
    const file = newFile();
    const appender = open(new SqliteStore({ path: file, queue: 'hooks' })); // appends only: never holds the lease
    const first = makeEvents(100);
    await appender.append(first);

    const old = new Consumer(file, { max: 7 });
    await old.until((c) => c.delivered.length === 100, 'the first 100 events');
    expect(leaseOf(file)?.holder).toContain(`pid ${old.pid}`);

    // The new process starts beside the old one and accepts events of its own at once.
    const next = new Consumer(file, { max: 7, append: 50 });
    await next.untilOpen();
    const during = makeEvents(200);
    for (let i = 0; i < during.length; i += 20) {
      await appender.append(during.slice(i, i + 20));
      await new Promise((r) => setTimeout(r, 5));
    }
    await drained(appender);
    await old.until((c) => c.delivered.length + next.delivered.length >= 350, 'the output of all 350 deliveries');
    expect(next.delivered).toEqual([]);
    expect(old.delivered).toEqual([...ids(first), ...next.appended, ...ids(during)]);

    // The old process shuts down cleanly and frees the lease; the new one goes on.
    expect(await old.stop('SIGTERM')).toEqual({ code: 0, signal: null });
    const after = makeEvents(100);
    await appender.append(after);
    await next.until((c) => c.delivered.length === 100, 'the 100 events appended after the handover');
    expect(leaseOf(file)?.holder).toContain(`pid ${next.pid}`);
    expect(await next.stop('SIGTERM')).toEqual({ code: 0, signal: null });

    expect(next.appended).toHaveLength(50);
    expect([...old.delivered, ...next.delivered]).toEqual([...ids(first), ...next.appended, ...ids(during), ...ids(after)]);
    // A clean close leaves no lease behind.
    expect(leaseOf(file)).toBeUndefined();
  }, 60_000);

  it("takes over from a holder of this host killed with SIGKILL as soon as its process is gone, before its lease expires", async () => {
    const file = newFile();
    const events = makeEvents(60);
    const waiting = open(new SqliteStore({ path: file, queue: 'hooks', pollMs: 20, leaseMs: FOREVER_MS, leaseRenewMs: 300 }));
    await waiting.append(events);

    // One event per take, slowly, so that it is killed in the middle of the queue.
    const holder = new Consumer(file, { max: 1, delayMs: 20, leaseMs: FOREVER_MS, leaseRenewMs: 300 });
    await holder.until((c) => c.delivered.length >= 10, '10 deliveries');
    expect(await waiting.take(10, never(), 0)).toEqual([]);
    expect(await waiting.pending()).toBeGreaterThan(0);

    expect(await holder.stop('SIGKILL')).toEqual({ code: null, signal: 'SIGKILL' });
    const lease = leaseOf(file)!;
    expect(lease.holder).toContain(`pid ${holder.pid}`);

    const taken: string[] = [];
    let firstTakeAt: number | undefined;
    while ((await waiting.pending()) > 0) {
      const batch = await waiting.take(10, never(), 5000);
      if (batch.length === 0) continue;
      firstTakeAt ??= Date.now();
      taken.push(...batch.map((b) => b.event.id));
      await waiting.ack(batch);
    }
    // Ten minutes of lease left, and yet the dead holder's queue moved on.
    expect(firstTakeAt).toBeLessThan(lease.expires_at);
    expect(leaseOf(file)!.holder).not.toBe(lease.holder);

    // Every event delivered, in order. The killed holder may have delivered its last
    // event without acknowledging it; that one (and only that one) comes again.
    const killedAt = holder.delivered.length;
    expect(holder.delivered).toEqual(ids(events).slice(0, killedAt));
    const resumedAt = ids(events).indexOf(taken[0]);
    expect([killedAt - 1, killedAt]).toContain(resumedAt);
    expect(taken).toEqual(ids(events).slice(resumedAt));
  }, 60_000);
});

describe('SqliteStore lease of a holder on another host', () => {
  it('is waited out: nothing is taken before its expiry, everything after', async () => {
    const file = newFile();
    const store = open(new SqliteStore({ path: file, queue: 'hooks', pollMs: 20 }));
    const events = makeEvents(3);
    await store.append(events);
    // A process of another host (sharing the file over a network filesystem) holds the lease.
    const expiresAt = Date.now() + 1500;
    const db = new Database(file);
    db.prepare('INSERT INTO queue_leases (queue, holder, expires_at) VALUES (?, ?, ?) ON CONFLICT (queue) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at')
      .run('hooks', `not-${hostname()} pid 1 0123abcd`, expiresAt);
    db.close();
    expect(await store.take(10, never(), 0)).toEqual([]);
    const batch = await store.take(10, never(), 10_000);
    expect(Date.now()).toBeGreaterThanOrEqual(expiresAt);
    expect(ids(batch.map((b) => b.event))).toEqual(ids(events));
  }, 30_000);
});

describe('SqliteStore lease, stores in one process', () => {
  it("hands events only to the holder; the other's take waits, counts the same pending, appends, and takes over when the holder closes", async () => {
    const file = newFile();
    const holder = open(new SqliteStore({ path: file, queue: 'hooks', pollMs: FOREVER_MS }));
    const other = open(new SqliteStore({ path: file, queue: 'hooks', pollMs: FOREVER_MS }));
    const events = makeEvents(5);
    await holder.append(events.slice(0, 3));
    expect(ids((await holder.take(10, never(), 0)).map((s) => s.event))).toEqual(ids(events.slice(0, 3)));

    expect(await other.take(10, never(), 0)).toEqual([]);
    expect(await other.pending()).toBe(3);
    // An append through the store that waits reaches the holder.
    await other.append(events.slice(3));
    expect(await holder.pending()).toBe(5);
    const batch = await holder.take(10, never(), 0);
    expect(batch.map((s) => s.event.id)).toEqual(ids(events));
    await holder.ack(batch.slice(0, 2));

    let settled = false;
    const taking = other.take(10, never(), FOREVER_MS).finally(() => (settled = true));
    await new Promise((r) => setTimeout(r, 50));
    expect(settled).toBe(false);
    await holder.close();
    expect((await taking).map((s) => s.event.id)).toEqual(ids(events.slice(2)));
    expect(leaseOf(file)?.holder).toMatch(new RegExp(`^${hostname()} pid ${process.pid} `));
  });

  it('keeps the lease while the holder is busy for several lease times, by renewing it', async () => {
    const file = newFile();
    const options = { path: file, queue: 'hooks', pollMs: 20, leaseMs: 400, leaseRenewMs: 50 };
    const holder = open(new SqliteStore(options));
    const other = open(new SqliteStore(options));
    await holder.append(makeEvents(3));
    const held = await holder.take(1, never(), 0);
    expect(held).toHaveLength(1);
    // Delivering takes a while (an endpoint that is down): no take for three lease times.
    await new Promise((r) => setTimeout(r, 1300));
    expect(await other.take(10, never(), 0)).toEqual([]);
    expect((await holder.take(10, never(), 0)).map((s) => s.key)).toEqual([held[0].key, expect.any(String), expect.any(String)]);
  });

  it('leases each queue of a file apart', async () => {
    const file = newFile();
    const a = open(new SqliteStore({ path: file, queue: 'a', pollMs: FOREVER_MS }));
    const b = open(new SqliteStore({ path: file, queue: 'b', pollMs: FOREVER_MS }));
    const forA = makeEvent();
    const forB = makeEvent();
    await a.append([forA]);
    await b.append([forB]);
    expect((await a.take(5, never(), 0)).map((s) => s.event.id)).toEqual([forA.id]);
    expect((await b.take(5, never(), 0)).map((s) => s.event.id)).toEqual([forB.id]);
  });

  it('refuses lease durations that cannot work, naming the option', () => {
    const file = newFile();
    expect(() => new SqliteStore({ path: file, queue: 'hooks', leaseMs: 1000, leaseRenewMs: 1000 })).toThrow(
      `sqlite store at ${file}: option "leaseRenewMs" (1000) must be less than "leaseMs" (1000), so that the lease is renewed before it expires`,
    );
    expect(() => new SqliteStore({ path: file, queue: 'hooks', leaseMs: 0 })).toThrow(
      `sqlite store at ${file}: option "leaseMs" must be a positive whole number of milliseconds, got 0`,
    );
    expect(() => new SqliteStore({ path: file, queue: 'hooks', leaseRenewMs: Number.NaN })).toThrow(
      `sqlite store at ${file}: option "leaseRenewMs" must be a positive whole number of milliseconds, got NaN`,
    );
  });
});
