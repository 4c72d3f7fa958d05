import net from 'node:net';
import type { Event } from '../../lib';
import { Breaker } from '../../lib/deliver/breaker';
import { Queue } from '../../lib/deliver/queue';
import { RetryingSink } from '../../lib/deliver/retrying-sink';
import type { Sink } from '../../lib/deliver/sink';
import { BrokerDeliveryError } from '../../lib/deliver/broker-sink';
import { makeEvents } from './events';
import { SwitchableProxy } from './tcp-proxy';
import { sleep, waitFor } from './wait';

/** The brokers the broker-sink tests publish to, and how to start each one. */
export const BROKERS = {
  nats: { port: 4222, what: 'NATS with JetStream', start: 'nats-server -a 127.0.0.1 -p 4222 -js' },
  amqp: { port: 5672, what: 'RabbitMQ (guest/guest)', start: 'service rabbitmq-server start' },
  mqtt: { port: 1883, what: 'Mosquitto', start: 'mosquitto -d' },
} as const;

/**
 * Fails, naming the service and how to start it, when nothing listens on its port at
 * 127.0.0.1. These tests run against the real brokers; they never skip.
 */
export async function requireBroker(name: keyof typeof BROKERS): Promise<void> {
  const b = BROKERS[name];
  const ok = await new Promise<boolean>((resolve) => {
    const s = net.connect(b.port, '127.0.0.1');
    s.setTimeout(2000, () => {
      s.destroy();
      resolve(false);
    });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
  if (!ok) throw new Error(`${b.what} is not reachable at 127.0.0.1:${b.port}: start it (${b.start}); these tests need the real service`);
}

/** Counts what a sink's hooks report: events confirmed, events in failed writes, and the last error. */
export function hookTally() {
  const tally = {
    confirmed: 0,
    failed: 0,
    statuses: [] as number[],
    errors: [] as Error[],
    hooks: {
      success: (status: number, events: readonly Event[], ms: number) => {
        if (!(ms >= 0)) throw new Error(`latency ${ms} is not a duration`);
        tally.statuses.push(status);
        tally.confirmed += events.length;
      },
      failure: (status: number) => {
        throw new Error(`a broker sink reported an HTTP failure status ${status}`);
      },
      error: (err: Error, events: readonly Event[]) => {
        tally.errors.push(err);
        tally.failed += events.length;
      },
    },
  };
  return tally;
}

/**
 * Delivers `batches` through the endpoint's chain (Queue -> RetryingSink + Breaker ->
 * sink) while the broker goes away: the first half before `proxy.cut()`, the rest while it
 * is cut. Once a few attempts have failed the link is restored, and this returns when the
 * sink has had every event confirmed.
 */
async function deliverThroughOutage(sink: Sink, proxy: SwitchableProxy, batches: Event[][], tally: ReturnType<typeof hookTally>): Promise<void> {
  const breaker = new Breaker({ threshold: 1, backoffMs: 20, maxBackoffMs: 100 });
  const queue = new Queue(new RetryingSink(sink, breaker), { maxEvents: 10, lingerMs: 0 });
  const total = batches.reduce((n, b) => n + b.length, 0);
  const half = Math.ceil(batches.length / 2);
  try {
    for (const batch of batches.slice(0, half)) {
      await queue.write(batch);
      await sleep(5);
    }
    await proxy.cut();
    const failedBefore = tally.errors.length;
    for (const batch of batches.slice(half)) await queue.write(batch);
    await waitFor(() => tally.errors.length >= failedBefore + 3, { describe: () => ({ errors: tally.errors.length, confirmed: tally.confirmed }) });
    await proxy.restore();
    await waitFor(() => tally.confirmed >= total, {
      describe: () => ({ confirmed: tally.confirmed, total, lastError: tally.errors.at(-1)?.message }),
    });
    await waitFor(async () => (await queue.pending()) === 0);
  } finally {
    await queue.close();
  }
}

/** Runs `use` with a proxy in front of the broker, stopped afterwards whatever happened. */
async function withBrokerProxy<T>(broker: keyof typeof BROKERS, use: (proxy: SwitchableProxy) => Promise<T>): Promise<T> {
  const proxy = await new SwitchableProxy(BROKERS[broker].port).start();
  try {
    return await use(proxy);
  } finally {
    await proxy.stop();
  }
}

/**
 * A sink made for the broker (`make` gets its URL through a proxy in front of it) opens
 * one connection for a write and releases it on close.
 */
export async function expectConnectionReleased(broker: keyof typeof BROKERS, make: (url: string) => Sink): Promise<void> {
  await withBrokerProxy(broker, async (proxy) => {
    const sink = make(`${broker}://127.0.0.1:${proxy.port}`);
    await sink.write(makeEvents(1));
    expect(proxy.open).toBe(1);
    await sink.close();
    await waitFor(() => proxy.open === 0);
    expect(proxy.accepted).toBe(1);
  });
}

/**
 * A sink whose broker cannot be reached (the proxy in front of it cut) rejects a write
 * with the broker's URL, credentials redacted, and tells its hooks each event failed.
 * `make` gets a URL with credentials and `path`.
 */
export async function expectUnreachableRejects(
  broker: keyof typeof BROKERS,
  make: (url: string, hooks: ReturnType<typeof hookTally>['hooks']) => Sink,
  path = '',
): Promise<void> {
  await withBrokerProxy(broker, async (proxy) => {
    await proxy.cut();
    const tally = hookTally();
    const sink = make(`${broker}://alice:s3cret@127.0.0.1:${proxy.port}${path}`, tally.hooks);
    const err = await sink.write(makeEvents(2)).catch((e: Error) => e);
    await sink.close();
    expect(err).toBeInstanceOf(BrokerDeliveryError);
    expect((err as Error).message.startsWith(`publish to ${broker}://redacted:redacted@127.0.0.1:${proxy.port}${path}: `)).toBe(true);
    expect((err as Error).message).not.toContain('s3cret');
    expect(tally.failed).toBe(2);
  });
}

/**
 * The outage every broker suite runs: 20 writes of 10 events through a sink made for the
 * broker behind a proxy (`make` gets its URL, with `userinfo` when given, and the hooks),
 * with the broker cut away mid-run (`deliverThroughOutage`). Checks the sink saw the
 * outage (three failed writes or more, each a BrokerDeliveryError naming the URL with its
 * credentials redacted) and connected again; returns the ids written, in order.
 */
export async function runBrokerOutage(
  broker: keyof typeof BROKERS,
  make: (url: string, hooks: ReturnType<typeof hookTally>['hooks']) => Sink,
  userinfo = '',
): Promise<{ written: string[]; tally: ReturnType<typeof hookTally> }> {
  const tally = hookTally();
  const batches = Array.from({ length: 20 }, () => makeEvents(10));
  await withBrokerProxy(broker, async (proxy) => {
    await deliverThroughOutage(make(`${broker}://${userinfo}127.0.0.1:${proxy.port}`, tally.hooks), proxy, batches, tally);
    expect(tally.errors.length).toBeGreaterThanOrEqual(3);
    expect(tally.errors[0]).toBeInstanceOf(BrokerDeliveryError);
    expect(tally.errors[0].message).toContain(`${broker}://${userinfo ? 'redacted:redacted@' : ''}127.0.0.1:${proxy.port}`);
    // More connections than one: the sink connected again after the cut.
    expect(proxy.accepted).toBeGreaterThan(1);
  });
  return { written: batches.flat().map((e) => e.id), tally };
}
