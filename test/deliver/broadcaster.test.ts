import { Broadcaster } from '../../lib/deliver/broadcaster';
import { makeEvents } from '../helpers/events';
import { FlakySink, RecordingSink, StuckSink } from '../helpers/sinks';

describe('Broadcaster', () => {
  it('delivers 1000 events to each of 10 sinks, in order', async () => {
    const sinks = Array.from({ length: 10 }, () => new RecordingSink());
    const b = new Broadcaster(sinks);
    const events = makeEvents(1000);
    await Promise.all(events.map((e) => b.write([e])));
    for (const s of sinks) expect(s.events.map((e) => e.id)).toEqual(events.map((e) => e.id));
    await b.close();
    for (const s of sinks) expect(s.closed).toBe(true);
  });

  it('keeps delivering to the others when one sink fails, and reports the failure', async () => {
    const good = new RecordingSink();
    const bad = new FlakySink(() => true);
    const errors: number[] = [];
    const b = new Broadcaster([bad, good], { onError: (_e, i) => errors.push(i) });
    await b.write(makeEvents(3));
    expect(good.events).toHaveLength(3);
    expect(errors).toEqual([0]);
    await b.close();
  });

  it('closes even when a sink below never answers', async () => {
    const stuck = new StuckSink();
    const good = new RecordingSink();
    const b = new Broadcaster([stuck, good]);
    const pending = b.write(makeEvents(1));
    await b.close();
    await pending;
    expect(good.events).toHaveLength(1);
  });

  it('with one sink, reports its failure, thrown or rejected, and resolves', async () => {
    const errors: [string, number][] = [];
    const rejecting = new Broadcaster([new FlakySink(() => true)], { onError: (e, i) => errors.push([e.message, i]) });
    await expect(rejecting.write(makeEvents(1))).resolves.toBeUndefined();
    const throwing = new Broadcaster(
      [
        {
          write: () => {
            throw new Error('thrown at once');
          },
          close: async () => undefined,
        },
      ],
      { onError: (e, i) => errors.push([e.message, i]) },
    );
    await expect(throwing.write(makeEvents(1))).resolves.toBeUndefined();
    expect(errors).toEqual([[expect.any(String), 0], ['thrown at once', 0]]);
  });

  it('with one sink, hands it the very array and rejects writes once closed', async () => {
    const sink = new RecordingSink();
    const seen: unknown[] = [];
    const b = new Broadcaster([{ write: async (events) => void seen.push(events), close: () => sink.close() }]);
    const events = makeEvents(2);
    await b.write(events);
    expect(seen[0]).toBe(events);
    await b.close();
    await expect(b.write(events)).rejects.toThrow('broadcaster: sink is closed');
  });
});
