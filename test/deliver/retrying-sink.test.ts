import { Breaker, ExponentialBackoff } from '../../lib/deliver/breaker';
import { ClosedSinkError } from '../../lib/deliver/sink';
import { RetriesExhaustedError, RetryingSink, WriteInterruptedError } from '../../lib/deliver/retrying-sink';
import { makeEvents } from '../helpers/events';
import { FlakySink, RecordingSink } from '../helpers/sinks';

describe('RetryingSink', () => {
  it('delivers everything through a flaky sink (breaker threshold 3, backoff 10ms)', async () => {
    // Fails two of every three attempts: the breaker opens and closes repeatedly.
    const flaky = new FlakySink((attempt) => attempt % 3 !== 0);
    const sink = new RetryingSink(flaky, new Breaker({ threshold: 3, backoffMs: 10 }));
    const events = makeEvents(30);
    for (const e of events) await sink.write([e]);
    expect(flaky.events.map((e) => e.id)).toEqual(events.map((e) => e.id));
    expect(flaky.failures).toBe(60);
    await sink.close();
  });

  it('gives up after maxRetries with the last error', async () => {
    const flaky = new FlakySink(() => true);
    const retries: number[] = [];
    const sink = new RetryingSink(flaky, new Breaker({ threshold: 100, backoffMs: 1 }), {
      maxRetries: 2,
      onRetry: (n) => retries.push(n),
    });
    const err = await sink.write(makeEvents(1)).catch((e) => e);
    expect(err).toBeInstanceOf(RetriesExhaustedError);
    expect(err.attempts).toBe(3);
    expect(err.message).toMatch(/gave up after 3 attempts: flaky sink: attempt 3 failed/);
    expect(retries).toEqual([1, 2]);
  });

  it('honours a Retry-After the sink below asks for', async () => {
    let attempts = 0;
    const dst = new RecordingSink();
    const sink = new RetryingSink(
      {
        write: async (events) => {
          if (++attempts === 1) throw Object.assign(new Error('busy'), { retryAfterMs: 30 });
          await dst.write(events);
        },
        close: async () => undefined,
      },
      new Breaker({ threshold: 10, backoffMs: 1 }),
      { onRetry: (_n, _e, wait) => waits.push(wait) },
    );
    const waits: number[] = [];
    await sink.write(makeEvents(1));
    expect(waits).toEqual([30]);
    expect(dst.events).toHaveLength(1);
  });

  it('interrupts a write waiting for its backoff without closing: later writes go through', async () => {
    let failing = true;
    const flaky = new FlakySink(() => failing);
    const sink = new RetryingSink(flaky, new Breaker({ threshold: 1, backoffMs: 3_600_000 }));
    const writing = sink.write(makeEvents(1));
    await new Promise((r) => setTimeout(r, 20));
    sink.interrupt(); // a wait of an hour would pass the test's time limit
    await expect(writing).rejects.toBeInstanceOf(WriteInterruptedError);
    expect(flaky.attempts).toBe(1);
    failing = false;
    const strategy = sink.strategy as Breaker;
    strategy.success(); // the endpoint is back
    const [event] = makeEvents(1);
    await sink.write([event]);
    expect(flaky.events).toEqual([event]);
    await sink.close();
  });

  it('throws a permanent failure at once, leaving the breaker as it was', async () => {
    const refused = new Error('413 Payload Too Large');
    const dst = { write: async () => Promise.reject(refused), close: async () => undefined };
    const breaker = new Breaker({ threshold: 1, backoffMs: 3_600_000 });
    const sink = new RetryingSink(dst, breaker, { isPermanent: (e) => e === refused });
    await expect(sink.write(makeEvents(1))).rejects.toBe(refused);
    await expect(sink.write(makeEvents(1))).rejects.toBe(refused);
    expect(breaker.state()).toBe('closed');
    expect(breaker.delay()).toBe(0);
  });

  it('cancels a pending backoff on close instead of hanging', async () => {
    const flaky = new FlakySink(() => true);
    const sink = new RetryingSink(flaky, new Breaker({ threshold: 1, backoffMs: 3_600_000 }));
    const writing = sink.write(makeEvents(1));
    await new Promise((r) => setTimeout(r, 20));
    await sink.close();
    await expect(writing).rejects.toBeInstanceOf(ClosedSinkError);
    expect(flaky.attempts).toBe(1);
  });
});

describe('Breaker', () => {
  it('lets attempts through until threshold failures, then one per backoff', () => {
    let now = 1000;
    const b = new Breaker({ threshold: 2, backoffMs: 100, now: () => now });
    expect(b.delay()).toBe(0);
    b.failure();
    expect(b.delay()).toBe(0);
    expect(b.state()).toBe('closed');
    b.failure();
    expect(b.state()).toBe('open');
    expect(b.delay()).toBe(100);
    now += 60;
    expect(b.delay()).toBe(40);
    now += 40;
    expect(b.delay()).toBe(0);
    b.success();
    expect(b.state()).toBe('closed');
    expect(b.delay()).toBe(0);
  });

  it('defaults to Distribution\'s threshold 10 and backoff 1s', () => {
    let now = 0;
    const b = new Breaker({ now: () => now });
    for (let i = 0; i < 9; i++) b.failure();
    expect(b.delay()).toBe(0);
    b.failure();
    expect(b.delay()).toBe(1000);
  });
});

describe('ExponentialBackoff', () => {
  it('doubles the wait per failure up to the ceiling, less up to the jitter', () => {
    const waits: number[] = [];
    const b = new ExponentialBackoff({ baseMs: 100, maxMs: 1000, jitter: 0, random: () => 0.5 });
    for (let i = 0; i < 6; i++) {
      b.failure();
      waits.push(Math.round(b.delay() / 10) * 10);
    }
    expect(waits).toEqual([100, 200, 400, 800, 1000, 1000]);
    const jittered = new ExponentialBackoff({ baseMs: 1000, jitter: 0.5, random: () => 1 });
    jittered.failure();
    expect(jittered.delay()).toBeLessThanOrEqual(500);
    expect(jittered.delay()).toBeGreaterThan(400);
    jittered.success();
    expect(jittered.delay()).toBe(0);
  });
});
