import { MemoryStore } from '../../lib/stores/memory-store';
import { Queue } from '../../lib/deliver/queue';
import { HttpSink } from '../../lib/deliver/http-sink';
import { StoreCorruptError, type StoredEvent } from '../../lib/stores/queue-store';
import { DEFAULTS, encodeEnvelope, StoreFullError, type Event } from '../../lib';
import { makeEvent, makeEvents } from '../helpers/events';
import { TestReceiver } from '../helpers/http-receiver';
import { FlakySink, RecordingSink, StuckSink } from '../helpers/sinks';
import { sleep, waitFor } from '../helpers/wait';

/** A fault injector: a memory store whose acknowledgements fail while `failing` is set. */
class AckFailingStore extends MemoryStore {
  failing = true;
  failedAcks = 0;
  override async ack(entries: readonly StoredEvent[]): Promise<void> {
    if (this.failing) {
      this.failedAcks++;
      throw new Error('memory: ack failed (injected)');
    }
    return super.ack(entries);
  }
}

/** A fault injector: a memory store that reports damage from one operation while `damaged` is set. */
class DamagedStore extends MemoryStore {
  damaged = true;
  calls = { append: 0, take: 0, ack: 0 };
  constructor(private readonly where: 'append' | 'take' | 'ack') {
    super();
  }
  private check(op: 'append' | 'take' | 'ack'): void {
    this.calls[op]++;
    if (this.damaged && op === this.where) throw new StoreCorruptError('memory', `bad row found by ${op} (injected)`);
  }
  override async append(events: readonly Event[]): Promise<void> {
    this.check('append');
    return super.append(events);
  }
  override async take(max: number, signal: AbortSignal, waitMs?: number): Promise<StoredEvent[]> {
    const taken = await super.take(max, signal, waitMs);
    if (taken.length > 0) this.check('take');
    return taken;
  }
  override async ack(entries: readonly StoredEvent[]): Promise<void> {
    this.check('ack');
    return super.ack(entries);
  }
}

/** What a sink below says of events it will never take (an HTTP 413, say). */
class RefusedError extends Error {}

/** Records the writes it takes; refuses, with RefusedError, any write holding one of `bad`. */
class RefusingSink extends RecordingSink {
  readonly attempts: Event[][] = [];
  constructor(private readonly bad: Set<string>) {
    super();
  }
  override async write(events: readonly Event[]): Promise<void> {
    this.attempts.push([...events]);
    if (events.some((e) => this.bad.has(e.id))) throw new RefusedError(`refused ${events.length} events`);
    await super.write(events);
  }
}

/** A sink whose every write takes `ms` (a request on the wire), recording each write and when it started. */
class SlowSink extends RecordingSink {
  readonly startedAt: number[] = [];
  constructor(private readonly ms: number) {
    super();
  }
  override async write(events: readonly Event[]): Promise<void> {
    this.startedAt.push(performance.now());
    await sleep(this.ms);
    await super.write(events);
  }
}

const bytes = (events: readonly Event[]) => Buffer.byteLength(encodeEnvelope(events));

describe('Queue', () => {
  it('delivers 1000 concurrent writes, each once, in the order accepted', async () => {
    const dst = new RecordingSink();
    const ingress: Event[] = [];
    const egress: Event[] = [];
    const q = new Queue(dst, { hooks: { ingress: (e) => ingress.push(...e), egress: (e) => egress.push(...e) } });
    const events = makeEvents(1000);
    await Promise.all(events.map((e) => q.write([e])));
    await dst.received(1000);
    expect(dst.events.map((e) => e.id)).toEqual(ingress.map((e) => e.id));
    expect(new Set(dst.events.map((e) => e.id)).size).toBe(1000);
    await q.close();
    expect(egress).toHaveLength(1000);
    expect(await q.pending()).toBe(0);
  });

  it('hands an idle sink one event alone, and what piled up behind a write together, up to maxEvents', async () => {
    const dst = new SlowSink(100);
    const q = new Queue(dst);
    const max = DEFAULTS.endpoint.maxEvents;
    // One alone, then two full writes and 49 more.
    const events = makeEvents(1 + 2 * max + 49);
    await q.write(events.slice(0, 1));
    await waitFor(() => dst.startedAt.length === 1);
    // These arrive while the first write is on the wire.
    for (const e of events.slice(1)) await q.write([e]);
    await dst.received(events.length);
    await q.close();
    expect(dst.writes[0]).toEqual(events.slice(0, 1));
    expect(dst.writes.slice(1).map((w) => w.length)).toEqual([max, max, 49]);
    expect(dst.events.map((e) => e.id)).toEqual(events.map((e) => e.id));
  });

  it('with maxEvents 1 writes strictly one event at a time, whatever is pending', async () => {
    const dst = new SlowSink(1);
    const q = new Queue(dst, { maxEvents: 1 });
    const events = makeEvents(30);
    await q.write(events);
    await dst.received(30);
    await q.close();
    expect(dst.writes.map((w) => w.length)).toEqual(Array(30).fill(1));
    expect(dst.events.map((e) => e.id)).toEqual(events.map((e) => e.id));
  });

  it('keeps every write of several events within maxBytes, in order; an event larger than maxBytes goes alone', async () => {
    const small = makeEvents(60);
    const maxBytes = bytes(small.slice(0, 7)); // room for about 7 of these
    const big = makeEvent('push');
    big.target.references = Array.from({ length: 60 }, (_, i) => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', size: i + 1, digest: 'sha256:' + String(i).padStart(64, '0') }));
    expect(bytes([big])).toBeGreaterThan(maxBytes);
    const events = [...small.slice(0, 25), big, ...small.slice(25)];
    const measured: number[] = [];
    const dst = new RecordingSink();
    const q = new Queue(dst, { maxEvents: 20, maxBytes, measure: (e) => (measured.push(e.length), bytes(e)) });
    await q.write(events);
    await dst.received(events.length);
    await q.close();
    expect(dst.events.map((e) => e.id)).toEqual(events.map((e) => e.id));
    for (const w of dst.writes) if (w.length > 1) expect(bytes(w)).toBeLessThanOrEqual(maxBytes);
    expect(dst.writes).toContainEqual([big]);
    // Full enough: no two neighbouring writes of small events would have fitted in one.
    expect(dst.writes.length).toBeLessThanOrEqual(Math.ceil(bytes(small) / maxBytes) * 2 + 1);
    expect(Math.max(...dst.writes.map((w) => w.length))).toBeGreaterThanOrEqual(5);
    // Measuring costs little: about one body per write once the size per event is known.
    expect(measured.length).toBeLessThanOrEqual(dst.writes.length * 3);
  });

  it('measures with Distribution\'s envelope by default, and maxBytes 0 is no limit', async () => {
    const events = makeEvents(12);
    const limited = new RecordingSink();
    const q1 = new Queue(limited, { maxBytes: bytes(events.slice(0, 3)) });
    await q1.write(events);
    await limited.received(12);
    await q1.close();
    expect(Math.max(...limited.writes.map((w) => w.length))).toBe(3);
    for (const w of limited.writes) expect(bytes(w)).toBeLessThanOrEqual(bytes(events.slice(0, 3)));

    const unlimited = new RecordingSink();
    const q2 = new Queue(unlimited, { maxBytes: 0, measure: () => Infinity });
    await q2.write(events);
    await unlimited.received(12);
    await q2.close();
    expect(unlimited.writes.map((w) => w.length)).toEqual([12]);
  });

  it('lingers only while events trickle in: a quiet spell\'s first event goes at once, a backlog never waits', async () => {
    const linger = 300;
    const dst = new SlowSink(0);
    const q = new Queue(dst, { lingerMs: linger });
    const [a, b, c, d] = makeEvents(4);
    let t = performance.now();
    await q.write([a]);
    await dst.received(1);
    expect(performance.now() - t).toBeLessThan(linger / 2); // idle: at once
    await q.write([b]);
    await q.write([c]);
    await dst.received(3);
    // b and c came within the linger after a's write: they waited for it, and went together.
    expect(dst.writes.slice(1)).toEqual([[b, c]]);
    expect(dst.startedAt[1] - dst.startedAt[0]).toBeGreaterThanOrEqual(linger - 5);
    await sleep(linger + 50); // a quiet spell
    t = performance.now();
    await q.write([d]);
    await dst.received(4);
    expect(performance.now() - t).toBeLessThan(linger / 2);
    await q.close();

    // A backlog fills every write: none waits for the linger.
    const backlog = new RecordingSink();
    const q2 = new Queue(backlog, { maxEvents: 10, lingerMs: 10_000 });
    t = performance.now();
    await q2.write(makeEvents(100));
    await backlog.received(100);
    expect(performance.now() - t).toBeLessThan(2000);
    expect(backlog.writes.map((w) => w.length)).toEqual(Array(10).fill(10));
    await q2.close();
  });

  it('hints each next write to the sink below while the current one is in flight', async () => {
    const prepared: (readonly Event[])[] = [];
    const written: (readonly Event[])[] = [];
    const sink = {
      prepare: (events: readonly Event[]) => void prepared.push(events),
      write: async (events: readonly Event[]) => {
        written.push(events);
        await new Promise((r) => setTimeout(r, 2)); // a request on the wire
      },
      close: async () => undefined,
    };
    const q = new Queue(sink, { maxEvents: 1 });
    await q.write(makeEvents(5));
    while (written.length < 5) await new Promise((r) => setTimeout(r, 5));
    await q.close();
    // Every write after the first of a take was prepared first, as the very same array.
    expect(prepared).toHaveLength(4);
    prepared.forEach((p, i) => expect(written[i + 1]).toBe(p));
  });

  it('returns from write before the sink below has the events', async () => {
    const stuck = new StuckSink();
    const q = new Queue(stuck, { drainTimeoutMs: 10 });
    await q.write(makeEvents(3));
    expect(await q.pending()).toBe(3);
    await q.close();
  });

  it('refuses events past the store limit, counting them as dropped, and keeps the accepted ones', async () => {
    const stuck = new StuckSink();
    const dropped: Event[] = [];
    const q = new Queue(stuck, { store: new MemoryStore({ limit: 2 }), drainTimeoutMs: 10, hooks: { dropped: (e) => dropped.push(...e) } });
    await q.write([makeEvent()]);
    await q.write([makeEvent()]);
    await expect(q.write([makeEvent()])).rejects.toBeInstanceOf(StoreFullError);
    expect(dropped).toHaveLength(1);
    expect(await q.pending()).toBe(2);
    await q.close();
  });

  it('reports events the sink below gives up on and moves on to the next', async () => {
    const dst = new FlakySink((attempt) => attempt === 1);
    const dropped: string[] = [];
    const q = new Queue(dst, { maxEvents: 1, hooks: { dropped: (e) => dropped.push(...e.map((x) => x.id)) }, onError: () => undefined });
    const [a, b] = makeEvents(2);
    await q.write([a, b]);
    await dst.received(1);
    expect(dropped).toEqual([a.id]);
    expect(dst.events.map((e) => e.id)).toEqual([b.id]);
    await q.close();
  });

  it('gives up on the events of one write together', async () => {
    const dst = new FlakySink((attempt) => attempt === 1);
    const dropped: string[] = [];
    const q = new Queue(dst, { hooks: { dropped: (e) => dropped.push(...e.map((x) => x.id)) }, onError: () => undefined });
    const [a, b, c] = makeEvents(3);
    await q.write([a, b]);
    await waitFor(() => dropped.length === 2);
    await q.write([c]);
    await dst.received(1);
    expect(dropped).toEqual([a.id, b.id]);
    expect(dst.events.map((e) => e.id)).toEqual([c.id]);
    await q.close();
  });

  it('keeps delivering what is pending on close, up to the drain timeout', async () => {
    const dst = new RecordingSink();
    const q = new Queue(dst, { drainTimeoutMs: 5000 });
    await q.write(makeEvents(50));
    await q.close();
    expect(dst.events).toHaveLength(50);
  });

  it('closes promptly with a sink below that never answers, leaving events in the store', async () => {
    const store = new MemoryStore();
    const q = new Queue(new StuckSink(), { store, drainTimeoutMs: 20 });
    await q.write(makeEvents(2));
    await q.close();
    expect(await store.pending()).toBe(2);
  });

  it('splits a refused write in halves, first half first, and gives up at once on each event refused alone', async () => {
    const events = makeEvents(8);
    const dst = new RefusingSink(new Set([events[2].id]));
    const dropped: Event[] = [];
    const store = new MemoryStore();
    await store.append(events); // a backlog: one take, one write of eight
    const q = new Queue(dst, { store, isRejected: (e) => e instanceof RefusedError, hooks: { dropped: (e) => dropped.push(...e) }, onError: () => undefined });
    await dst.received(7);
    await q.close();
    const ids = (w: Event[]) => w.map((e) => events.indexOf(e));
    // 0-7 refused, 0-3 refused, 0-1 taken, 2-3 refused, 2 refused alone (given up), 3 taken, 4-7 taken.
    expect(dst.attempts.map(ids)).toEqual([[0, 1, 2, 3, 4, 5, 6, 7], [0, 1, 2, 3], [0, 1], [2, 3], [2], [3], [4, 5, 6, 7]]);
    expect(dst.writes.map(ids)).toEqual([[0, 1], [3], [4, 5, 6, 7]]);
    expect(dropped).toEqual([events[2]]);
    expect(await store.pending()).toBe(0);
  });

  it('suspends after the write in flight, keeps storing writes, and resumes from the oldest pending event', async () => {
    const dst = new SlowSink(30);
    const q = new Queue(dst, { maxEvents: 1 });
    const events = makeEvents(6);
    await q.write(events.slice(0, 2));
    await waitFor(() => dst.startedAt.length === 1);
    await q.suspend(); // the first write was on its way: it ends, and is the last
    expect(q.delivering).toBe(false);
    expect(dst.events).toEqual([events[0]]);
    await q.write(events.slice(2));
    await q.suspend(); // twice is harmless
    await sleep(80); // negative window: a running loop would have written two more by now
    expect(dst.events).toEqual([events[0]]);
    expect(await q.pending()).toBe(5);
    await Promise.all([q.resume(), q.resume()]);
    await dst.received(6);
    await q.close();
    expect(dst.events.map((e) => e.id)).toEqual(events.map((e) => e.id));
  });

  it('starts suspended when asked, storing writes until resumed', async () => {
    const dst = new RecordingSink();
    const q = new Queue(dst, { suspended: true });
    await q.write(makeEvents(3));
    await sleep(30);
    expect(dst.events).toHaveLength(0);
    await q.resume();
    await dst.received(3);
    await q.close();
  });

  it('closes at once while suspended, leaving the events in the store', async () => {
    const store = new MemoryStore();
    const dst = new RecordingSink();
    // A close that waited to drain would wait an hour: past the test's time limit.
    const q = new Queue(dst, { store, drainTimeoutMs: 3_600_000, suspended: true });
    await q.write(makeEvents(2));
    await q.close();
    expect(dst.events).toHaveLength(0);
    expect(await store.pending()).toBe(2);
  });

  describe('when the store fails', () => {
    let receiver: TestReceiver;
    beforeEach(async () => {
      receiver = await new TestReceiver().start();
    });
    afterEach(() => receiver.stop());

    it('asks again, with a pause, for an acknowledgement it refused, and POSTs each event once meanwhile', async () => {
      const store = new AckFailingStore();
      const errors: string[] = [];
      const q = new Queue(new HttpSink(receiver.url), { store, storeRetryMs: 20, onError: (err) => errors.push(err.message) });
      const events = makeEvents(5);
      await q.write(events);
      await receiver.until((r) => r.events.length === 5);
      await waitFor(() => store.failedAcks >= 5, { describe: () => store.failedAcks });
      // Without the pause, the loop would take and POST the same events again meanwhile.
      expect(receiver.events.map((e) => e.id)).toEqual(events.map((e) => e.id));
      store.failing = false;
      await waitFor(async () => (await store.pending()) === 0);
      await q.close();
      expect(receiver.events.map((e) => e.id)).toEqual(events.map((e) => e.id));
      // Reported on the 1st, 2nd, 4th… failure, not each one.
      expect(errors.length).toBeGreaterThanOrEqual(1);
      expect(errors.length).toBeLessThan(store.failedAcks);
      expect(errors[0]).toMatch(/ack failed \(injected\); acknowledging \d+ delivered events failed, asking again in 20ms/);
    });

    it.each(['take', 'ack'] as const)('halts delivery when %s finds the store damaged: told once, no loop, later writes left to the store', async (where) => {
      const store = new DamagedStore(where);
      const halts: Error[] = [];
      const errors: Error[] = [];
      const q = new Queue(new HttpSink(receiver.url), { store, onHalt: (err) => halts.push(err), onError: (err) => errors.push(err) });
      await q.write(makeEvents(3));
      await waitFor(() => halts.length === 1);
      await sleep(250); // negative window: a loop taking or POSTing again would show here
      expect(halts).toHaveLength(1);
      expect(halts[0]).toBeInstanceOf(StoreCorruptError);
      expect(halts[0].message).toMatch(new RegExp(`bad row found by ${where}`));
      expect(errors).toEqual([]);
      expect(store.calls[where]).toBe(1);
      expect(receiver.requests).toHaveLength(where === 'take' ? 0 : 1);
      expect(q.delivering).toBe(false);
      // The store takes the write (it still appends) and nothing goes out.
      await q.write(makeEvents(1));
      expect(store.calls.append).toBe(2);
      await sleep(50);
      expect(receiver.requests).toHaveLength(where === 'take' ? 0 : 1);

      // Once repaired, resume delivers what the store holds.
      store.damaged = false;
      await q.resume();
      await q.write(makeEvents(1));
      await waitFor(async () => (await store.pending()) === 0, { describe: () => receiver.requests.length });
      await q.close();
    });

    it('halts delivery when an append finds the store damaged; later writes reject with what the store says', async () => {
      const store = new DamagedStore('append');
      const halts: Error[] = [];
      const q = new Queue(new HttpSink(receiver.url), { store, onHalt: (err) => halts.push(err) });
      const first = await q.write(makeEvents(1)).catch((err) => err);
      expect(first).toBeInstanceOf(StoreCorruptError);
      await expect(q.write(makeEvents(1))).rejects.toBeInstanceOf(StoreCorruptError);
      expect(store.calls.append).toBe(2);
      // Told once: the second refusal does not halt again.
      expect(halts).toEqual([first]);
      await q.close();
    });
  });
});
