import { MemoryStore } from '../../lib/stores/memory-store';
import { Queue } from '../../lib/deliver/queue';
import { DEFAULTS, encodeEnvelope, StoreFullError, type Event } from '../../lib';
import { makeEvent, makeEvents } from '../helpers/events';
import { FlakySink, RecordingSink, StuckSink } from '../helpers/sinks';
import { sleep, waitFor } from '../helpers/wait';

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
    const events = makeEvents(250);
    await q.write(events.slice(0, 1));
    await waitFor(() => dst.startedAt.length === 1);
    // These arrive while the first write is on the wire.
    for (const e of events.slice(1)) await q.write([e]);
    await dst.received(250);
    await q.close();
    expect(dst.writes[0]).toEqual(events.slice(0, 1));
    expect(dst.writes.slice(1).map((w) => w.length)).toEqual([DEFAULTS.endpoint.maxEvents, DEFAULTS.endpoint.maxEvents, 49]);
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
});
