import { decodeEnvelope, encodeEnvelope } from '../../lib/codec/envelope';
import type { Event } from '../../lib/model/event';
import type { EndpointControl, QueueStore, StoredEvent } from '../../lib/stores/queue-store';
import type { DeadLetterStore } from '../../lib/stores/dead-letter-store';
import { makeEvent, makeEvents } from '../helpers/events';
import { loadFixtures } from '../helpers/fixtures';

/** A take that would outlast jest's timeout: only a wake-up or an abort can end it in time. */
const FOREVER_MS = 10 * 60 * 1000;

const never = () => new AbortController().signal;
const ids = (batch: readonly StoredEvent[]) => batch.map((s) => s.event.id);

/** Takes and acknowledges until the store is empty, `max` at a time; returns what came out. */
export async function drain(store: QueueStore, max = 64): Promise<Event[]> {
  const out: Event[] = [];
  for (;;) {
    const batch = await store.take(max, never(), 0);
    if (batch.length === 0) return out;
    out.push(...batch.map((b) => b.event));
    await store.ack(batch);
  }
}

/** Wraps a store factory so that every store it made is closed after each test. */
function closedAfterEach<S extends { close(): Promise<void> }>(makeStore: () => S | Promise<S>): () => Promise<S> {
  let open: S[] = [];
  afterEach(async () => {
    await Promise.all(open.map((s) => s.close()));
    open = [];
  });
  return async () => {
    const store = await makeStore();
    open.push(store);
    return store;
  };
}

/**
 * What every QueueStore does, run against each store. `makeStore` gives a new, empty store
 * each call; the contract closes it after the test. `reopen`, for a store that keeps its
 * data past `close()`, gives a new store on the same data as the (closed) one passed.
 */
export function describeStoreContract(
  name: string,
  makeStore: () => QueueStore | Promise<QueueStore>,
  reopen?: (closed: QueueStore) => QueueStore | Promise<QueueStore>,
): void {
  describe(`${name} honours the store contract`, () => {
    const make = closedAfterEach(makeStore);
    const reopened: QueueStore[] = [];
    afterEach(async () => {
      await Promise.all(reopened.splice(0).map((s) => s.close()));
    });
    const closeAndReopen = async (store: QueueStore) => {
      await store.close();
      const next = await reopen!(store);
      reopened.push(next);
      return next;
    };

    it('hands events out in the order they were appended', async () => {
      const store = await make();
      const events = makeEvents(5);
      await store.append(events.slice(0, 2));
      await store.append([events[2]]);
      await store.append(events.slice(3));
      expect(ids(await store.take(10, never(), 0))).toEqual(events.map((e) => e.id));
    });

    it('returns the same events until they are acknowledged, then the next ones', async () => {
      const store = await make();
      const events = makeEvents(4);
      await store.append(events);
      const first = await store.take(2, never(), 0);
      const again = await store.take(2, never(), 0);
      expect(ids(again)).toEqual(ids(first));
      expect(again.map((s) => s.key)).toEqual(first.map((s) => s.key));
      await store.ack(first);
      expect(ids(await store.take(2, never(), 0))).toEqual([events[2].id, events[3].id]);
    });

    it('counts pending events: take leaves them, ack removes them', async () => {
      const store = await make();
      expect(await store.pending()).toBe(0);
      await store.append(makeEvents(5));
      expect(await store.pending()).toBe(5);
      const batch = await store.take(2, never(), 0);
      expect(await store.pending()).toBe(5);
      await store.ack(batch);
      expect(await store.pending()).toBe(3);
      await store.ack([]);
      expect(await store.pending()).toBe(3);
    });

    it('returns nothing at once when empty and waitMs is 0', async () => {
      const store = await make();
      await expect(store.take(5, never(), 0)).resolves.toEqual([]);
    });

    it('waits in take and wakes when an event is appended', async () => {
      const store = await make();
      let settled = false;
      const taking = store.take(5, never(), FOREVER_MS).finally(() => (settled = true));
      await new Promise((r) => setTimeout(r, 30));
      expect(settled).toBe(false);
      const event = makeEvent();
      await store.append([event]);
      expect(ids(await taking)).toEqual([event.id]);
    });

    it('returns from a waiting take when the signal aborts', async () => {
      const store = await make();
      const stop = new AbortController();
      const taking = store.take(5, stop.signal, FOREVER_MS);
      setTimeout(() => stop.abort(), 30);
      await expect(taking).resolves.toEqual([]);
      // The store still works after an interrupted wait.
      const event = makeEvent();
      await store.append([event]);
      expect(ids(await store.take(5, never(), 0))).toEqual([event.id]);
    });

    it('gives out 1000 events exactly once, in order', async () => {
      const store = await make();
      const events = makeEvents(1000);
      // Batches of several sizes, as a busy registry appends them.
      for (let i = 0, size = 1; i < events.length; i += size, size = (size % 97) + 13) {
        await store.append(events.slice(i, i + size));
      }
      expect(await store.pending()).toBe(1000);
      const out = await drain(store, 37);
      expect(out.map((e) => e.id)).toEqual(events.map((e) => e.id));
      expect(await store.pending()).toBe(0);
    });

    it('keeps every event byte for byte', async () => {
      const store = await make();
      const fixtures = loadFixtures();
      const captured = fixtures.flatMap((f) => decodeEnvelope(f.body).events);
      const awkward = makeEvent('pull', {
        actor: { name: 'zoë <admin> & "ops" \u2028 \u{1F433}' },
        timestamp: '2024-02-29T23:59:59.123456789Z',
      });
      await store.append([...captured, awkward]);
      const taken = await store.take(captured.length + 1, never(), 0);
      expect(taken).toHaveLength(captured.length + 1);
      // The captured Go bodies come back out exactly as Distribution sent them.
      fixtures.forEach((f, i) => expect(encodeEnvelope([taken[i].event])).toBe(f.body));
      expect(encodeEnvelope([taken[captured.length].event])).toBe(encodeEnvelope([awkward]));
      expect(encodeEnvelope(taken.map((t) => t.event), { version: 'v2' })).toBe(
        encodeEnvelope([...captured, awkward], { version: 'v2' }),
      );
    });

    it('keeps the kind the Bridge recorded: a blob delete stays a blob delete', async () => {
      const store = await make();
      const target = { repository: 'demo/app', digest: 'sha256:' + 'b'.repeat(64) };
      await store.append([makeEvent('delete', { target, kind: 'blob' }), makeEvent('delete', { target, kind: 'manifest' })]);
      const taken = await store.take(2, never(), 0);
      expect(taken.map((t) => t.event.kind)).toEqual(['blob', 'manifest']);
    });

    // loadControl and saveControl are optional: a store has both or neither.
    it('saves the endpoint control and loads it back; undefined clears it', async () => {
      const store = await make();
      if (!hasControl(store)) {
        expect([store.loadControl, store.saveControl]).toEqual([undefined, undefined]);
        return;
      }
      expect(await store.loadControl()).toBeUndefined();
      await store.saveControl(PAUSED);
      expect(await store.loadControl()).toEqual(PAUSED);
      await store.saveControl(GONE);
      expect(await store.loadControl()).toEqual(GONE);
      await store.saveControl(undefined);
      expect(await store.loadControl()).toBeUndefined();
      // Clearing what is not set is harmless.
      await store.saveControl(undefined);
      expect(await store.loadControl()).toBeUndefined();
    });

    // Only a store that keeps its data past close() can show it kept the control.
    if (reopen) it('keeps the endpoint control through close and reopen', async () => {
      const store = await make();
      if (!hasControl(store)) {
        expect([store.loadControl, store.saveControl]).toEqual([undefined, undefined]);
        return;
      }
      await store.saveControl(GONE);
      const second = await closeAndReopen(store);
      expect(await (second as ControlStore).loadControl()).toEqual(GONE);
      await (second as ControlStore).saveControl(undefined);
      const third = await closeAndReopen(second);
      expect(await (third as ControlStore).loadControl()).toBeUndefined();
    });
  });
}

type ControlStore = QueueStore & Required<Pick<QueueStore, 'loadControl' | 'saveControl'>>;
const hasControl = (store: QueueStore): store is ControlStore =>
  typeof store.loadControl === 'function' && typeof store.saveControl === 'function';

const PAUSED: EndpointControl = { state: 'paused', reason: 'paused by an operator', since: '2026-01-02T03:04:05.678Z' };
const GONE: EndpointControl = {
  state: 'gone',
  reason: 'HTTP 410 from https://hooks.example/registry: \u00ab gone \u00bb, "quoted" \u{1F433}',
  since: '2026-02-03T04:05:06.789Z',
};

/** What every DeadLetterStore does; `makeStore` gives a new, empty one each call. */
export function describeDeadLetterContract(
  name: string,
  makeStore: () => DeadLetterStore | Promise<DeadLetterStore>,
): void {
  describe(`${name} honours the dead-letter contract`, () => {
    const make = closedAfterEach(makeStore);

    it('lists what was added, oldest first, with the reason', async () => {
      const store = await make();
      const events = makeEvents(3);
      await store.add(events.slice(0, 2), 'HTTP 500 from http://hooks.test/a');
      await store.add([events[2]], 'gave up after 5 retries');
      expect(await store.count()).toBe(3);
      const letters = await store.list();
      expect(letters.map((l) => l.event.id)).toEqual(events.map((e) => e.id));
      expect(letters.map((l) => l.reason)).toEqual([
        'HTTP 500 from http://hooks.test/a',
        'HTTP 500 from http://hooks.test/a',
        'gave up after 5 retries',
      ]);
      expect(Number.isNaN(Date.parse(letters[0].failedAt))).toBe(false);
      expect((await store.list({ limit: 2 })).map((l) => l.event.id)).toEqual([events[0].id, events[1].id]);
      expect(encodeEnvelope(letters.map((l) => l.event))).toBe(encodeEnvelope(events));
    });

    it('keeps the kind of a blob delete', async () => {
      const store = await make();
      const blobDelete = makeEvent('delete', { target: { repository: 'demo/app', digest: 'sha256:' + 'c'.repeat(64) }, kind: 'blob' });
      await store.add([blobDelete], 'gone');
      expect((await store.list()).map((l) => l.event.kind)).toEqual(['blob']);
      expect((await store.replay()).map((e) => e.kind)).toEqual(['blob']);
    });

    it('replays the chosen events: removes and returns them', async () => {
      const store = await make();
      const events = makeEvents(4);
      await store.add(events, 'down');
      const replayed = await store.replay([events[3].id, events[1].id, 'no-such-id']);
      expect(replayed.map((e) => e.id)).toEqual([events[1].id, events[3].id]);
      expect(await store.count()).toBe(2);
      expect((await store.list()).map((l) => l.event.id)).toEqual([events[0].id, events[2].id]);
    });

    it('replays everything when no ids are given', async () => {
      const store = await make();
      const events = makeEvents(3);
      await store.add(events, 'down');
      expect((await store.replay()).map((e) => e.id)).toEqual(events.map((e) => e.id));
      expect(await store.count()).toBe(0);
      expect(await store.replay()).toEqual([]);
    });
  });
}
