// Issue 12, broker destinations: how fast an endpoint's chain (Queue -> RetryingSink ->
// destination) drains a backlog into NATS JetStream (each publish acknowledged by the
// stream) and RabbitMQ (publisher confirms), one event per message, beside HTTP with one
// event per POST to the counting receiver, all in the same run. The brokers are the
// machine's own: NATS at 127.0.0.1:4222 (with -js), RabbitMQ at 127.0.0.1:5672.
import { randomUUID } from 'node:crypto';
import { Breaker, MemoryStore, Queue, RetryingSink, normalizeEndpoint, type EndpointInit } from '../lib/pipeline';
import type { Event } from '../lib';
import { createDestinationSink } from '../lib/deliver/destination';
import { amqpDriver, natsDriver } from '../lib/deliver/broker-drivers';
import { makeBenchEvents } from './events';
import { startChild, stop, waitUntil, type Result } from './util';

const EVENTS = Number(process.env.BENCH_BROKER_EVENTS ?? 10_000);
const NATS_URL = process.env.BENCH_NATS_URL ?? 'nats://127.0.0.1:4222';
const AMQP_URL = process.env.BENCH_AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
/** Longest a drain may take before the suite fails rather than hangs. */
const DRAIN_TIMEOUT_MS = 120_000;

interface Drained {
  rate: number;
  /** Sender CPU per event, µs. */
  cpuUs: number;
}

/** Times the endpoint's chain delivering `events`, already in its store, to the destination `init` names. */
async function drain(init: EndpointInit, events: Event[]): Promise<Drained> {
  const config = normalizeEndpoint(init);
  const store = new MemoryStore();
  await store.append(events);
  let confirmed = 0;
  let failure: Error | undefined;
  const sink = createDestinationSink(config, {
    hooks: {
      success: (_s, e) => void (confirmed += e.length),
      error: (err) => void (failure = err),
      failure: (status) => void (failure = new Error(`status ${status}`)),
    },
  });
  const started = performance.now();
  const cpu = process.cpuUsage();
  const queue = new Queue(new RetryingSink(sink, new Breaker({ threshold: config.threshold, backoffMs: config.backoffMs })), { store, maxEvents: config.maxEvents, lingerMs: 0 });
  try {
    await waitUntil(() => {
      if (failure) throw new Error(`${init.url}: ${failure.message}`);
      return confirmed >= events.length;
    }, `${events.length} events confirmed by ${init.url}`, DRAIN_TIMEOUT_MS, 5);
  } finally {
    await queue.close();
  }
  const seconds = (performance.now() - started) / 1000;
  const used = process.cpuUsage(cpu);
  return { rate: events.length / seconds, cpuUs: (used.user + used.system) / events.length };
}

export async function benchBrokers(): Promise<Result[]> {
  const results: Result[] = [];
  const events = makeBenchEvents(EVENTS);
  const tag = randomUUID().slice(0, 8);
  const fmt = (n: number) => Math.round(n).toLocaleString('en-US');

  // NATS: a stream of this run's alone, made by the sink, removed after.
  const stream = `BENCH_${tag}`;
  const nats = { name: 'bench-nats', url: NATS_URL, stream, createStream: true, subject: `bench.${tag}.{action}.{kind}` };
  // RabbitMQ: a queue bound to amq.topic for this run's routing keys (mandatory messages need one).
  const amqp = amqpDriver('the broker benchmark');
  const model = await amqp.connect(AMQP_URL);
  const channel = await model.createChannel();
  const { queue } = await channel.assertQueue('', { exclusive: true, autoDelete: true });
  await channel.bindQueue(queue, 'amq.topic', `bench.${tag}.#`);
  const rabbit = { name: 'bench-amqp', url: AMQP_URL, routingKey: `bench.${tag}.{action}.{kind}` };
  const { child, firstLine } = await startChild('bench/counting-receiver.ts');
  const http = { name: 'bench-http', url: `http://127.0.0.1:${firstLine.trim()}/` };
  try {
    // A short unreported pass of each first: the JIT's, and the connections'.
    for (const init of [http, nats, rabbit]) await drain({ ...init, maxEvents: 1 }, events.slice(0, 500));
    const rows: [string, EndpointInit, string][] = [
      ['HTTP: one event per POST', { ...http, maxEvents: 1 }, 'counting receiver in its own process, keep-alive'],
      ['NATS JetStream: one event per write, each acked', { ...nats, maxEvents: 1 }, 'publish, then wait for the stream\'s ack, then the next'],
      ['NATS JetStream: up to 100 events per write', { ...nats, maxEvents: 100 }, 'one message per event, pipelined; the write waits for every ack'],
      ['RabbitMQ confirms: one event per write', { ...rabbit, maxEvents: 1 }, 'persistent, mandatory; publish, then wait for the confirm'],
      ['RabbitMQ confirms: up to 100 events per write', { ...rabbit, maxEvents: 100 }, 'one message per event, pipelined; the write waits for every confirm'],
    ];
    const measured: Drained[] = [];
    for (const [name, init, note] of rows) {
      const d = await drain(init, events);
      measured.push(d);
      results.push({ name: `${name}, ${fmt(EVENTS)} events`, value: d.rate, unit: 'events/s', note: `${note}; ${d.cpuUs.toFixed(0)} µs sender CPU per event` });
    }
    const httpRate = measured[0].rate;
    results.push({ name: 'NATS one per write / HTTP one per POST', value: measured[1].rate / httpRate, unit: '×', note: 'same run' });
    results.push({ name: 'RabbitMQ one per write / HTTP one per POST', value: measured[3].rate / httpRate, unit: '×', note: 'same run' });
  } finally {
    await stop(child);
    await model.close();
    const { nats: client, jetstream } = natsDriver('the broker benchmark');
    const nc = await client.connect({ servers: NATS_URL.replace(/^nats:\/\//, '') });
    await (await jetstream.jetstreamManager(nc)).streams.delete(stream).catch(() => undefined);
    await nc.close();
  }
  return results;
}
