import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { BadCursorError, idAt, LogClock, type AttemptRecord, type LogEntry } from '../../lib/stores/delivery-log';
import { MemoryDeliveryLog } from '../../lib/stores/memory-delivery-log';
import { logFileOf, SqliteDeliveryLog } from '../../lib/stores/sqlite-delivery-log';
import { SqliteStore } from '../../lib/stores/sqlite-store';
import { createDeliveryLog } from '../../lib/stores/create-stores';
import { normalizeLog, normalizeQueue } from '../../lib/config/normalize';
import Database from 'better-sqlite3';
import type { Event } from '../../lib';
import { makeEvent } from '../helpers/events';
import { describeEachLog } from '../helpers/delivery-logs';
import { collectGarbageNextTurn } from '../helpers/gc';

const HOUR = 3_600_000;

/** An attempt at `at` (ms) carrying these events. */
function attempt(endpoint: string, id: number, events: Event[], extra: Partial<AttemptRecord> = {}): LogEntry {
  return {
    kind: 'attempt',
    attempt: { id: String(id), time: new Date().toISOString(), endpoint, eventIds: events.map((e) => e.id), attempt: 1, status: 200, error: null, latencyMs: 1.5, response: 'ok', test: false, ...extra },
  };
}

function pending(endpoint: string, seq: number, events: Event[]): LogEntry {
  return { kind: 'events', endpoint, state: 'pending', events, seq, at: Date.now() };
}

/** The contract every delivery log honours, run against each kind. */
describeEachLog('delivery log', (open) => {
  const clock = new LogClock();

  it('pages attempts newest first by cursor, and refuses a cursor it never handed out', async () => {
    const log = await open();
    const ids = Array.from({ length: 5 }, () => clock.next());
    await log.write(ids.map((id) => attempt('a', id, [makeEvent()])));
    await log.write([attempt('b', clock.next(), [makeEvent()])]);
    const first = await log.attempts('a', { limit: 2 });
    expect(first.items.map((a) => a.id)).toEqual([ids[4], ids[3]].map(String));
    const second = await log.attempts('a', { limit: 2, cursor: first.next! });
    expect(second.items.map((a) => a.id)).toEqual([ids[2], ids[1]].map(String));
    const last = await log.attempts('a', { limit: 2, cursor: second.next! });
    expect(last).toEqual({ items: [expect.objectContaining({ id: String(ids[0]), status: 200, response: 'ok', latencyMs: 1.5 })], next: null });
    await expect(log.attempts('a', { limit: 2, cursor: 'abc' })).rejects.toThrow(BadCursorError);
    await expect(log.events({ endpoints: ['a'], limit: 2, cursor: '12x' })).rejects.toThrow(BadCursorError);
  });

  it('gives back each event as it was written: its kind, and characters Go escapes', async () => {
    const log = await open();
    const event: Event = { ...makeEvent('delete', { kind: 'tag' }), request: { id: 'r1', method: 'DELETE', useragent: 'a<b>&c\u2028' } };
    event.target = { ...event.target, tag: 'v<1>' };
    await log.write([pending('a', clock.next(), [event]), attempt('a', clock.next(), [event])]);
    const [found] = (await log.events({ endpoints: ['a'], tag: 'v<1>', limit: 5 })).items;
    expect(found.event).toEqual(event);
    expect((await log.events({ endpoints: ['a'], digest: event.target.digest, action: 'delete', limit: 5 })).items.map((e) => e.event.id)).toEqual([event.id]);
  });

  it('keeps at most `attempts` attempts per endpoint: the oldest go', async () => {
    const log = await open({ attempts: 3 });
    const ids = Array.from({ length: 5 }, () => clock.next());
    for (const id of ids) await log.write([attempt('a', id, [makeEvent()])]);
    await log.write([attempt('b', clock.next(), [makeEvent()])]);
    expect((await log.attempts('a', { limit: 10 })).items.map((a) => a.id)).toEqual([ids[4], ids[3], ids[2]].map(String));
    expect((await log.attempts('b', { limit: 10 })).items).toHaveLength(1);
  });

  it('keeps attempts and events for the retention window only', async () => {
    const log = await open({ retentionMs: HOUR });
    const old = makeEvent();
    const fresh = makeEvent();
    const then = Date.now() - 2 * HOUR;
    await log.write([pending('a', idAt(then), [old]), attempt('a', idAt(then) + 1, [old]), pending('a', clock.next(), [fresh]), attempt('a', clock.next(), [fresh])]);
    await log.trim();
    expect((await log.attempts('a', { limit: 10 })).items.map((a) => a.eventIds[0])).toEqual([fresh.id]);
    expect((await log.events({ endpoints: ['a'], limit: 10 })).items.map((e) => e.event.id)).toEqual([fresh.id]);
    expect(await log.event(old.id, ['a'])).toEqual([]);
  });

  it('keeps at most `events` events per endpoint: the oldest go', async () => {
    const log = await open({ events: 3 });
    const events = Array.from({ length: 5 }, () => makeEvent());
    for (const e of events) await log.write([pending('a', clock.next(), [e])]);
    expect((await log.events({ endpoints: ['a'], limit: 10 })).items.map((e) => e.event.id)).toEqual(events.slice(2).reverse().map((e) => e.id));
    expect(await log.event(events[0].id, ['a'])).toEqual([]);
  });

  it('finds events by id, digest, repository, tag, action and state, with their attempts counted', async () => {
    const log = await open();
    const pushed = makeEvent('push', { target: { repository: 'team/app', digest: 'sha256:' + 'a'.repeat(64), tag: 'v1', mediaType: 'application/vnd.oci.image.manifest.v1+json' } });
    const pulled = makeEvent('pull', { target: { repository: 'team/app', digest: 'sha256:' + 'b'.repeat(64), tag: 'v2' } });
    const other = makeEvent('push', { target: { repository: 'other/x', digest: 'sha256:' + 'a'.repeat(64) } });
    const seq = clock.next(3);
    const a1 = clock.next();
    const a2 = clock.next();
    await log.write([
      pending('hooks', seq, [pushed, pulled]),
      pending('scanner', seq + 2, [other]),
      attempt('hooks', a1, [pushed, pulled], { status: 500, response: 'busy' }),
      attempt('hooks', a2, [pushed, pulled], { attempt: 2 }),
      { kind: 'events', endpoint: 'hooks', state: 'delivered', events: [pushed, pulled], seq: 0, at: Date.now() },
      { kind: 'events', endpoint: 'scanner', state: 'dead-lettered', events: [other], seq: 0, at: Date.now() },
    ]);
    const both = ['hooks', 'scanner'];
    const ids = async (q: Record<string, string>) => (await log.events({ endpoints: both, limit: 10, ...q })).items.map((e) => e.event.id);
    expect(await ids({ digest: pushed.target.digest! })).toEqual([other.id, pushed.id]);
    expect(await ids({ repository: 'team/app' })).toEqual([pulled.id, pushed.id]);
    expect(await ids({ repository: 'team/app', tag: 'v2' })).toEqual([pulled.id]);
    expect(await ids({ action: 'pull' })).toEqual([pulled.id]);
    expect(await ids({ state: 'dead-lettered' })).toEqual([other.id]);
    expect(await ids({ id: pushed.id })).toEqual([pushed.id]);
    expect((await log.events({ endpoints: ['hooks'], limit: 10, digest: pushed.target.digest! })).items.map((e) => e.event.id)).toEqual([pushed.id]);
    const [found] = await log.event(pushed.id, both);
    expect(found).toMatchObject({ endpoint: 'hooks', state: 'delivered', attempts: 2, event: { id: pushed.id, action: 'push', target: { tag: 'v1' } } });
    expect((await log.eventAttempts('hooks', pushed.id)).map((a) => [a.id, a.status, a.response])).toEqual([
      [String(a1), 500, 'busy'],
      [String(a2), 200, 'ok'],
    ]);
    // Pages of one event each, by cursor.
    const first = await log.events({ endpoints: both, limit: 1 });
    const second = await log.events({ endpoints: both, limit: 1, cursor: first.next! });
    expect([...first.items, ...second.items].map((e) => e.event.id)).toEqual([other.id, pulled.id]);
  });

  it('keeps a test attempt out of the events it carried, and a replayed event in its place, pending again', async () => {
    const log = await open();
    const e = makeEvent();
    const seq = clock.next();
    await log.write([pending('a', seq, [e]), attempt('a', clock.next(), [e], { test: true })]);
    expect((await log.event(e.id, ['a']))[0].attempts).toBe(0);
    await log.write([{ kind: 'events', endpoint: 'a', state: 'delivered', events: [e], seq: 0, at: Date.now() }, pending('a', clock.next(), [e])]);
    expect(await log.event(e.id, ['a'])).toEqual([expect.objectContaining({ seq: String(seq), state: 'pending' })]);
  });

  it('keeps an event logged again in its first place, with its latest state and every attempt', async () => {
    const log = await open();
    const e = makeEvent();
    const seq = clock.next();
    const a1 = clock.next();
    await log.write([pending('a', seq, [e]), attempt('a', a1, [e], { status: 500 }), { kind: 'events', endpoint: 'a', state: 'dead-lettered', events: [e], seq: 0, at: Date.now() }]);
    // Replayed later, in another write: tried again, and given up on again.
    const again = clock.next();
    const a2 = clock.next();
    await log.write([pending('a', again, [e]), attempt('a', a2, [e], { attempt: 1, status: 502 })]);
    await log.write([{ kind: 'events', endpoint: 'a', state: 'dead-lettered', events: [e], seq: 0, at: Date.now() }]);
    expect(await log.event(e.id, ['a'])).toEqual([expect.objectContaining({ seq: String(seq), state: 'dead-lettered', attempts: 2 })]);
    expect((await log.eventAttempts('a', e.id)).map((x) => [x.id, x.status])).toEqual([
      [String(a1), 500],
      [String(a2), 502],
    ]);
    expect((await log.events({ endpoints: ['a'], limit: 10 })).items.map((x) => [x.seq, x.event.id])).toEqual([[String(seq), e.id]]);
  });

  it('counts the attempts of events named out of the order they came in (a retry of an older batch)', async () => {
    const log = await open();
    const [e1, e2, e3, e4] = [makeEvent(), makeEvent(), makeEvent(), makeEvent()];
    const seq = clock.next(4);
    await log.write([pending('a', seq, [e1, e2]), pending('a', seq + 2, [e3, e4])]);
    const ids = [clock.next(), clock.next(), clock.next()];
    await log.write([attempt('a', ids[0], [e1, e2], { status: 503 }), attempt('a', ids[1], [e3, e4])]);
    await log.write([
      { kind: 'events', endpoint: 'a', state: 'delivered', events: [e3, e4], seq: 0, at: Date.now() },
      attempt('a', ids[2], [e1, e2], { attempt: 2 }),
      { kind: 'events', endpoint: 'a', state: 'delivered', events: [e1], seq: 0, at: Date.now() },
    ]);
    const shown = async (e: Event) => (await log.event(e.id, ['a'])).map((x) => [x.state, x.attempts]);
    expect(await shown(e1)).toEqual([['delivered', 2]]);
    expect(await shown(e2)).toEqual([['pending', 2]]);
    expect(await shown(e3)).toEqual([['delivered', 1]]);
    expect((await log.eventAttempts('a', e2.id)).map((x) => x.id)).toEqual([ids[0], ids[2]].map(String));
    expect((await log.eventAttempts('a', e4.id)).map((x) => x.id)).toEqual([String(ids[1])]);
  });

  it('keeps nothing when the limits are 0', async () => {
    const log = await open({ attempts: 0, events: 0 });
    const e = makeEvent();
    await log.write([pending('a', clock.next(), [e]), attempt('a', clock.next(), [e])]);
    expect((await log.attempts('a', { limit: 10 })).items).toEqual([]);
    expect((await log.events({ endpoints: ['a'], limit: 10 })).items).toEqual([]);
  });
});

describe('memory delivery log', () => {
  it('stays within its limits over many writes, and finds what it keeps', async () => {
    const log = new MemoryDeliveryLog({ attempts: 1500, events: 1500 });
    const clock = new LogClock();
    const events = Array.from({ length: 6000 }, () => makeEvent());
    for (let i = 0; i < events.length; i += 100) {
      const batch = events.slice(i, i + 100);
      await log.write([
        pending('a', clock.next(batch.length), batch),
        ...batch.map((e) => attempt('a', clock.next(), [e])),
        { kind: 'events', endpoint: 'a', state: 'delivered', events: batch, seq: 0, at: Date.now() },
      ]);
    }
    const kept = events.slice(-1500);
    const all = await log.events({ endpoints: ['a'], limit: 2000 });
    expect(all.items.map((e) => e.event.id)).toEqual(kept.reverse().map((e) => e.id));
    expect(all.items.every((e) => e.state === 'delivered' && e.attempts === 1)).toBe(true);
    expect(await log.event(events[4499].id, ['a'])).toEqual([]);
    expect(await log.event(events[4500].id, ['a'])).toEqual([expect.objectContaining({ state: 'delivered', attempts: 1 })]);
    expect((await log.eventAttempts('a', events[5999].id)).map((a) => a.eventIds)).toEqual([[events[5999].id]]);
    expect((await log.attempts('a', { limit: 5000 })).items).toHaveLength(1500);
  });

  it('lets go of the attempts, events and feed items it drops at once, not when its arrays are next cut', async () => {
    const log = new MemoryDeliveryLog({ attempts: 10, events: 10 });
    const clock = new LogClock();
    // Refs made in a function of their own, so that only the log can hold what they point at.
    const write = async (n: number) => {
      const events = Array.from({ length: n }, () => makeEvent());
      const attempts = events.map((e) => attempt('a', clock.next(), [e]));
      await log.write([pending('a', clock.next(n), events), { kind: 'feed', events, seq: clock.next(n), at: Date.now() }, ...attempts]);
      return [...events, ...attempts.map((a) => (a as { attempt: AttemptRecord }).attempt)].map((x) => new WeakRef(x));
    };
    const first = await write(5);
    await write(50);
    await collectGarbageNextTurn();
    expect(first.map((ref) => ref.deref())).toEqual(Array(10).fill(undefined));
    expect((await log.attempts('a', { limit: 100 })).items).toHaveLength(10);
    expect((await log.events({ endpoints: ['a'], limit: 100 })).items).toHaveLength(10);
    expect((await log.feedRead(undefined, 100, undefined, 100)).events).toHaveLength(10);
  });
});

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'delivery-log-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('sqlite delivery log', () => {
  it('writes in a worker thread: close() waits for what was handed over, and a write after it fails', async () => {
    const file = path.join(dir, 'worker.db');
    const log = new SqliteDeliveryLog({ path: file });
    const clock = new LogClock();
    const e = makeEvent();
    const written = log.write([pending('a', clock.next(), [e]), attempt('a', clock.next(), [e])]);
    await log.close();
    await written;
    await expect(log.write([attempt('a', clock.next(), [e])])).rejects.toThrow(/closed/);
    const reopened = new SqliteDeliveryLog({ path: file });
    try {
      expect(await reopened.event(e.id, ['a'])).toEqual([expect.objectContaining({ state: 'pending', attempts: 1, event: e })]);
    } finally {
      await reopened.close();
    }
  });

  it('names its file beside the queue file it belongs to', () => {
    expect(logFileOf('/var/lib/registry/notifications.db')).toBe('/var/lib/registry/notifications-log.db');
    expect(logFileOf('queue.sqlite3')).toBe('queue-log.sqlite3');
    expect(logFileOf('/data/queue')).toBe('/data/queue-log');
  });

  it("with queue.type sqlite, lives in a file of its own, and moves there what an earlier version logged in the queue's file, once", async () => {
    const queueFile = path.join(dir, 'moved.db');
    const clock = new LogClock();
    const [e1, e2] = [makeEvent(), makeEvent()];
    // An earlier version: the log's tables in the queue's file, beside a pending event.
    const queue = new SqliteStore({ path: queueFile, queue: 'a' });
    await queue.append([e2]);
    const earlier = new SqliteDeliveryLog({ path: queueFile });
    await earlier.write([pending('a', clock.next(), [e1]), attempt('a', clock.next(), [e1]), { kind: 'feed', events: [e1], seq: clock.next(), at: Date.now() }]);
    await earlier.setConsumerCursor('scanner', e1.id);
    await earlier.close();

    const open = () => createDeliveryLog(normalizeQueue({ type: 'sqlite', path: queueFile }), normalizeLog({}));
    const log = open();
    try {
      await log.write([attempt('a', clock.next(), [e2])]);
      expect(await log.event(e1.id, ['a'])).toEqual([expect.objectContaining({ state: 'pending', attempts: 1, event: e1 })]);
      expect((await log.attempts('a', { limit: 10 })).items.map((a) => a.eventIds)).toEqual([[e2.id], [e1.id]]);
      expect((await log.feedRead(undefined, 10, undefined, 100)).events.map((x) => x.id)).toEqual([e1.id]);
      expect(await log.consumerCursor('scanner')).toBe(e1.id);
    } finally {
      await log.close();
    }
    const tables = (file: string) => {
      const db = new Database(file, { readonly: true });
      try {
        return (db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite%'").all() as { name: string }[]).map((r) => r.name).sort();
      } finally {
        db.close();
      }
    };
    expect(tables(queueFile).filter((t) => t.startsWith('log_'))).toEqual([]);
    // Only the log's tables: the queue's stay in the queue's file.
    expect(tables(path.join(dir, 'moved-log.db'))).toEqual(['log_attempts', 'log_consumers', 'log_events', 'log_feed']);
    // The queue kept its event; a second start moves nothing and loses nothing.
    expect((await queue.take(10, new AbortController().signal)).map((x) => x.event.id)).toEqual([e2.id]);
    await queue.close();
    const again = open();
    try {
      expect((await again.attempts('a', { limit: 10 })).items).toHaveLength(2);
      expect(await again.consumerCursor('scanner')).toBe(e1.id);
    } finally {
      await again.close();
    }
  });
});
