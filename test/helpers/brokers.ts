import net from 'node:net';
import type { AddressInfo } from 'node:net';
import type { Event } from '../../lib';
import { Breaker } from '../../lib/deliver/breaker';
import { Queue } from '../../lib/deliver/queue';
import { RetryingSink } from '../../lib/deliver/retrying-sink';
import type { Sink } from '../../lib/deliver/sink';
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

/**
 * A TCP proxy on 127.0.0.1 in front of a broker, standing for the network to it: `cut()`
 * drops every connection and closes the port (the broker went away); `restore()`
 * listens again on the same port. The broker itself is never touched.
 */
export class BrokerProxy {
  private server?: net.Server;
  private readonly sockets = new Set<net.Socket>();
  private listenPort = 0;
  /** Client connections accepted since the start. */
  accepted = 0;

  constructor(private readonly targetPort: number) {}

  async start(): Promise<this> {
    await this.listen();
    return this;
  }

  get port(): number {
    return this.listenPort;
  }

  /** Client connections open now. */
  get open(): number {
    return [...this.sockets].filter((s) => (s as net.Socket & { fromClient?: boolean }).fromClient).length;
  }

  private listen(): Promise<void> {
    const server = net.createServer((client) => {
      this.accepted++;
      const upstream = net.connect(this.targetPort, '127.0.0.1');
      (client as net.Socket & { fromClient?: boolean }).fromClient = true;
      this.sockets.add(client).add(upstream);
      client.pipe(upstream);
      upstream.pipe(client);
      const end = () => {
        client.destroy();
        upstream.destroy();
        this.sockets.delete(client);
        this.sockets.delete(upstream);
      };
      client.on('close', end).on('error', end);
      upstream.on('close', end).on('error', end);
    });
    this.server = server;
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.listenPort, '127.0.0.1', () => {
        this.listenPort = (server.address() as AddressInfo).port;
        resolve();
      });
    });
  }

  /** Drops every connection and stops listening: connecting is refused until `restore()`. */
  async cut(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  /** Listens again on the same port. */
  restore(): Promise<void> {
    return this.listen();
  }

  stop(): Promise<void> {
    return this.cut();
  }
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
export async function deliverThroughOutage(sink: Sink, proxy: BrokerProxy, batches: Event[][], tally: ReturnType<typeof hookTally>): Promise<void> {
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
