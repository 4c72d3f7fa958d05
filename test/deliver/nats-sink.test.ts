import { randomUUID } from 'node:crypto';
import { connect } from '@nats-io/transport-node';
import { jetstream, jetstreamManager, type JsMsg } from '@nats-io/jetstream';
import { decodeEnvelope } from '../../lib';
import { decodeBrokerMessage } from '../../lib/codec/cloudevents-bindings';
import { NatsSink } from '../../lib/deliver/nats-sink';
import type { NatsConnection } from '../../lib/deliver/broker-drivers';
import { expectConnectionReleased, expectUnreachableRejects, hookTally, requireBroker, runBrokerOutage, BROKERS } from '../helpers/brokers';
import { makeEvent, makeEvents } from '../helpers/events';
import { describeSinkContract } from '../helpers/sink-contract';

const NATS_URL = `nats://127.0.0.1:${BROKERS.nats.port}`;

/** A stream and subject prefix of this test alone. */
function scope() {
  const tag = randomUUID().slice(0, 8);
  return { stream: `REGNOTIFY_TEST_${tag}`, subject: `regnotify-test.${tag}.{action}.{kind}` };
}

interface Stored {
  subject: string;
  headers: Record<string, string>;
  body: string;
}

/** Every message of the stream, oldest first, read by an ordered JetStream consumer. */
async function readStream(nc: NatsConnection, stream: string, count: number): Promise<Stored[]> {
  const js = jetstream(nc);
  const consumer = await js.consumers.get(stream);
  const out: Stored[] = [];
  while (out.length < count) {
    const batch = await consumer.fetch({ max_messages: count - out.length, expires: 2000 });
    let got = 0;
    for await (const m of batch as AsyncIterable<JsMsg>) {
      got++;
      const headers: Record<string, string> = {};
      for (const [k, v] of m.headers ?? []) headers[k] = v.join(',');
      out.push({ subject: m.subject, headers, body: m.string() });
    }
    if (got === 0) break;
  }
  return out;
}

describe('NatsSink', () => {
  let nc: NatsConnection;
  const streams: string[] = [];
  beforeAll(async () => {
    await requireBroker('nats');
    nc = await connect({ servers: NATS_URL });
  });
  afterAll(async () => {
    const jsm = await jetstreamManager(nc);
    for (const s of streams) await jsm.streams.delete(s).catch(() => undefined);
    await nc.close();
  });
  const fresh = () => {
    const s = scope();
    streams.push(s.stream);
    return s;
  };

  it('publishes one message per event, in order, each acknowledged by the stream it created', async () => {
    const { stream, subject } = fresh();
    const tally = hookTally();
    const sink = new NatsSink(NATS_URL, { stream, createStream: true, subject, hooks: tally.hooks });
    const events = [...makeEvents(3), makeEvent('delete', { target: { repository: 'demo/app', tag: 'old' }, kind: 'tag' }), ...makeEvents(46)];
    await sink.write(events.slice(0, 20));
    await sink.write(events.slice(20));
    await sink.close();
    expect(tally.confirmed).toBe(50);
    expect(tally.statuses).toEqual([200, 200]);
    const stored = await readStream(nc, stream, 50);
    expect(stored.map((m) => decodeEnvelope(m.body).events[0].id)).toEqual(events.map((e) => e.id));
    const tag = subject.split('.')[1];
    expect(stored[0].subject).toBe(`regnotify-test.${tag}.push.manifest`);
    expect(stored[3].subject).toBe(`regnotify-test.${tag}.delete.tag`);
    expect(stored[0].headers['Nats-Msg-Id']).toBe(events[0].id);
    expect(stored[0].headers['Content-Type']).toBe('application/vnd.docker.distribution.events.v1+json');
    // Distribution's bytes for an envelope of one event.
    expect(decodeEnvelope(stored[0].body).events).toHaveLength(1);
  });

  it('sends CloudEvents in binary mode as ce- headers a NATS consumer reads per the binding', async () => {
    const { stream, subject } = fresh();
    const sink = new NatsSink(NATS_URL, { stream, createStream: true, subject, format: 'cloudevents-binary', headers: { 'X-Registry': ['eu-1'] } });
    const event = makeEvent('push', { target: { repository: 'team a/app', tag: 'v1', digest: 'sha256:' + 'ab'.repeat(32), mediaType: 'application/vnd.oci.image.manifest.v1+json' } });
    await sink.write([event]);
    await sink.close();
    const [m] = await readStream(nc, stream, 1);
    expect(m.headers['ce-specversion']).toBe('1.0');
    expect(m.headers['ce-id']).toBe(event.id);
    expect(m.headers['ce-type']).toBe('io.distribution.manifest.push');
    expect(m.headers['ce-source']).toBe('/registry/test:5000');
    // Percent-encoded as the binding asks: the space of the repository.
    expect(m.headers['ce-subject']).toBe('team%20a/app:v1');
    expect(m.headers['ce-datacontenttype']).toBe('application/json');
    expect(m.headers['Content-Type']).toBeUndefined();
    expect(m.headers['X-Registry']).toBe('eu-1');
    expect(JSON.parse(m.body).id).toBe(event.id);
    expect(decodeBrokerMessage('nats', { body: m.body, properties: m.headers }).target.repository).toBe('team a/app');
  });

  it('sends CloudEvents in structured mode with Content-Type application/cloudevents+json', async () => {
    const { stream, subject } = fresh();
    const sink = new NatsSink(NATS_URL, { stream, createStream: true, subject, format: 'cloudevents' });
    const event = makeEvent('pull');
    await sink.write([event]);
    await sink.close();
    const [m] = await readStream(nc, stream, 1);
    expect(m.headers['Content-Type']).toBe('application/cloudevents+json; charset=utf-8');
    const ce = JSON.parse(m.body);
    expect([ce.specversion, ce.id, ce.type, ce.data.id]).toEqual(['1.0', event.id, 'io.distribution.manifest.pull', event.id]);
  });

  it('loses nothing when the broker goes away mid-run: after it is back every event is in the stream, once', async () => {
    const { stream, subject } = fresh();
    const { written } = await runBrokerOutage('nats', (url, hooks) => new NatsSink(url, { stream, createStream: true, subject, timeoutMs: 500, hooks }));
    const stored = await readStream(nc, stream, written.length + 10);
    const ids = stored.map((m) => m.headers['Nats-Msg-Id']);
    // Every message's id is its event's: a duplicate, if any, carries the id of the event it repeats.
    for (const m of stored) expect(decodeEnvelope(m.body).events[0].id).toBe(m.headers['Nats-Msg-Id']);
    // JetStream dropped every republished event by its Nats-Msg-Id: each is there exactly once, in order.
    expect(ids).toEqual(written);
  }, 60_000);

  it('rejects with the broker URL, credentials redacted, when the broker cannot be reached', async () => {
    await expectUnreachableRejects('nats', (url, hooks) => new NatsSink(url, { hooks }));
  });

  it('fails a write no stream takes, naming the stream it expected', async () => {
    const { subject } = fresh();
    const sink = new NatsSink(NATS_URL, { subject, stream: 'REGNOTIFY_TEST_MISSING' });
    await expect(sink.write(makeEvents(1))).rejects.toThrow(/^publish to nats:\/\/127\.0\.0\.1:4222: /);
    await sink.close();
  });

  it('releases its connection on close', async () => {
    const { stream, subject } = fresh();
    await expectConnectionReleased('nats', (url) => new NatsSink(url, { stream, createStream: true, subject }));
  });

  describeSinkContract('NatsSink', () => new NatsSink(NATS_URL));
});
