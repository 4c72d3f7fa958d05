import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { BadCursorError, idAt, LogClock, type AttemptRecord, type DeliveryLog, type DeliveryLogLimits, type LogEntry } from '../../lib/stores/delivery-log';
import { MemoryDeliveryLog } from '../../lib/stores/memory-delivery-log';
import { SqliteDeliveryLog } from '../../lib/stores/sqlite-delivery-log';
import { RedisDeliveryLog } from '../../lib/stores/redis-delivery-log';
import type { Event } from '../../lib';
import { makeEvent } from '../helpers/events';
import { deletePrefix, describeWithRedis, REDIS_URL, uniquePrefix } from '../helpers/redis';

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
function contract(name: string, make: (limits: Partial<DeliveryLogLimits>) => Promise<DeliveryLog>) {
  describe(`${name} delivery log`, () => {
    const logs: DeliveryLog[] = [];
    const open = async (limits: Partial<DeliveryLogLimits> = {}) => {
      const log = await make(limits);
      logs.push(log);
      return log;
    };
    afterEach(async () => {
      await Promise.all(logs.splice(0).map((l) => l.close()));
    });
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

    it('keeps nothing when the limits are 0', async () => {
      const log = await open({ attempts: 0, events: 0 });
      const e = makeEvent();
      await log.write([pending('a', clock.next(), [e]), attempt('a', clock.next(), [e])]);
      expect((await log.attempts('a', { limit: 10 })).items).toEqual([]);
      expect((await log.events({ endpoints: ['a'], limit: 10 })).items).toEqual([]);
    });
  });
}

contract('memory', async (limits) => new MemoryDeliveryLog(limits));

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'delivery-log-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let files = 0;
contract('sqlite', async (limits) => new SqliteDeliveryLog({ path: path.join(dir, `log-${++files}.db`), ...limits }));

describeWithRedis('redis', () => {
  const prefixes: string[] = [];
  afterAll(async () => {
    for (const p of prefixes) await deletePrefix(p);
  });
  contract('redis', async (limits) => {
    const prefix = uniquePrefix('log');
    prefixes.push(prefix);
    const log = new RedisDeliveryLog({ url: REDIS_URL, prefix, ...limits });
    await log.open();
    return log;
  });
});
