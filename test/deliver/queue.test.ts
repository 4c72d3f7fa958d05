import { MemoryStore } from '../../lib/stores/memory-store';
import { Queue } from '../../lib/deliver/queue';
import { StoreFullError, type Event } from '../../lib';
import { makeEvent, makeEvents } from '../helpers/events';
import { FlakySink, RecordingSink, StuckSink } from '../helpers/sinks';

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

  it('hands the sink below one event per write by default and up to maxEvents when asked', async () => {
    const one = new RecordingSink();
    const q1 = new Queue(one);
    await q1.write(makeEvents(5));
    await one.received(5);
    expect(one.writes.every((w) => w.length === 1)).toBe(true);
    await q1.close();

    const many = new RecordingSink();
    const q2 = new Queue(many, { maxEvents: 4, lingerMs: 5 });
    await q2.write(makeEvents(10));
    await many.received(10);
    expect(Math.max(...many.writes.map((w) => w.length))).toBe(4);
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
    const q = new Queue(sink);
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
    const q = new Queue(dst, { hooks: { dropped: (e) => dropped.push(...e.map((x) => x.id)) }, onError: () => undefined });
    const [a, b] = makeEvents(2);
    await q.write([a, b]);
    await dst.received(1);
    expect(dropped).toEqual([a.id]);
    expect(dst.events.map((e) => e.id)).toEqual([b.id]);
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
