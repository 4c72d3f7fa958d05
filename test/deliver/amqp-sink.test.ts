import { randomUUID } from 'node:crypto';
import amqp, { type Channel, type ChannelModel, type ConsumeMessage } from 'amqplib';
import { decodeEnvelope } from '../../lib';
import { decodeBrokerMessage } from '../../lib/codec/cloudevents-bindings';
import { AmqpSink, UnroutableError } from '../../lib/deliver/amqp-sink';
import { BrokerDeliveryError } from '../../lib/deliver/broker-sink';
import { expectConnectionReleased, expectUnreachableRejects, hookTally, requireBroker, runBrokerOutage, BROKERS } from '../helpers/brokers';
import { makeEvent, makeEvents } from '../helpers/events';
import { describeSinkContract } from '../helpers/sink-contract';
import { waitFor } from '../helpers/wait';

const AMQP_URL = `amqp://guest:guest@127.0.0.1:${BROKERS.amqp.port}`;

/** A queue bound to amq.topic for this test's routing keys, and what it received. */
async function bindQueue(channel: Channel) {
  const tag = randomUUID().slice(0, 8);
  const { queue } = await channel.assertQueue('', { exclusive: true, autoDelete: true });
  await channel.bindQueue(queue, 'amq.topic', `regnotify-test.${tag}.#`);
  const received: ConsumeMessage[] = [];
  await channel.consume(queue, (m) => m && received.push(m), { noAck: true });
  return { routingKey: `regnotify-test.${tag}.{action}.{kind}`, tag, received };
}

describe('AmqpSink', () => {
  let model: ChannelModel;
  let channel: Channel;
  beforeAll(async () => {
    await requireBroker('amqp');
    model = await amqp.connect(AMQP_URL);
    channel = await model.createChannel();
  });
  afterAll(() => model.close());

  it('publishes one persistent message per event, in order, confirmed, to a queue bound to the exchange', async () => {
    const { routingKey, tag, received } = await bindQueue(channel);
    const tally = hookTally();
    const sink = new AmqpSink(AMQP_URL, { routingKey, hooks: tally.hooks });
    const events = [...makeEvents(3), makeEvent('mount', { target: { repository: 'demo/app', digest: 'sha256:' + '1'.repeat(64), mediaType: 'application/octet-stream', fromRepository: 'demo/base' } }), ...makeEvents(46)];
    await sink.write(events.slice(0, 25));
    await sink.write(events.slice(25));
    await sink.close();
    expect(tally.confirmed).toBe(50);
    await waitFor(() => received.length >= 50);
    expect(received.map((m) => m.properties.messageId)).toEqual(events.map((e) => e.id));
    expect(received.map((m) => decodeEnvelope(m.content).events[0].id)).toEqual(events.map((e) => e.id));
    expect(received[0].fields.routingKey).toBe(`regnotify-test.${tag}.push.manifest`);
    expect(received[3].fields.routingKey).toBe(`regnotify-test.${tag}.mount.blob`);
    expect(received[0].properties.contentType).toBe('application/vnd.docker.distribution.events.v1+json');
    expect(received[0].properties.deliveryMode).toBe(2);
  });

  it('sends CloudEvents in binary mode as cloudEvents_ headers and the content-type property', async () => {
    const { routingKey, received } = await bindQueue(channel);
    const sink = new AmqpSink(AMQP_URL, { routingKey, format: 'cloudevents-binary', headers: { 'X-Registry': ['eu-1'] } });
    const event = makeEvent('push', { target: { repository: 'team a/app', tag: 'v1', digest: 'sha256:' + 'ab'.repeat(32) } });
    await sink.write([event]);
    await sink.close();
    await waitFor(() => received.length === 1);
    const m = received[0];
    const h = m.properties.headers as Record<string, unknown>;
    expect(h.cloudEvents_specversion).toBe('1.0');
    expect(h.cloudEvents_id).toBe(event.id);
    expect(h.cloudEvents_type).toBe('io.distribution.manifest.push');
    expect(h.cloudEvents_source).toBe('/registry/test:5000');
    // AMQP strings carry UTF-8 as it is: no percent-encoding.
    expect(h.cloudEvents_subject).toBe('team a/app:v1');
    expect(h.cloudEvents_time).toBe(event.timestamp);
    expect(h.cloudEvents_datacontenttype).toBeUndefined();
    expect(m.properties.contentType).toBe('application/json');
    expect(h['X-Registry']).toBe('eu-1');
    expect(JSON.parse(m.content.toString()).id).toBe(event.id);
    expect(decodeBrokerMessage('amqp', { body: m.content, contentType: m.properties.contentType, properties: h }).target.tag).toBe('v1');
  });

  it('sends CloudEvents in structured mode with content-type application/cloudevents+json', async () => {
    const { routingKey, received } = await bindQueue(channel);
    const sink = new AmqpSink(AMQP_URL, { routingKey, format: 'cloudevents' });
    const event = makeEvent('pull');
    await sink.write([event]);
    await sink.close();
    await waitFor(() => received.length === 1);
    expect(received[0].properties.contentType).toBe('application/cloudevents+json; charset=utf-8');
    const ce = JSON.parse(received[0].content.toString());
    expect([ce.specversion, ce.id, ce.type]).toEqual(['1.0', event.id, 'io.distribution.manifest.pull']);
  });

  it('fails a write that no queue takes: the returned message would otherwise be lost', async () => {
    const tally = hookTally();
    const sink = new AmqpSink(AMQP_URL, { routingKey: `regnotify-test.nobody-${randomUUID().slice(0, 8)}.{action}`, hooks: tally.hooks });
    const err = await sink.write(makeEvents(2)).catch((e: BrokerDeliveryError) => e);
    await sink.close();
    expect(err).toBeInstanceOf(BrokerDeliveryError);
    expect((err as BrokerDeliveryError).cause).toBeInstanceOf(UnroutableError);
    expect((err as Error).message).toMatch(/^publish to amqp:\/\/redacted:redacted@127\.0\.0\.1:5672: no queue is bound to exchange "amq.topic" for routing key "regnotify-test\.nobody-/);
    expect(tally.failed).toBe(2);
  });

  it('fails a write to an exchange that does not exist, naming it', async () => {
    const sink = new AmqpSink(AMQP_URL, { exchange: `regnotify-test-missing-${randomUUID().slice(0, 8)}` });
    await expect(sink.write(makeEvents(1))).rejects.toThrow(/NOT_FOUND - no exchange 'regnotify-test-missing-/);
    await sink.close();
  });

  it('loses nothing when the broker goes away mid-run: after it is back every event is in the queue, duplicates only with their own id', async () => {
    const { routingKey, received } = await bindQueue(channel);
    const { written, tally } = await runBrokerOutage('amqp', (url, hooks) => new AmqpSink(url, { routingKey, timeoutMs: 1000, hooks }), 'guest:guest@');
    await waitFor(() => new Set(received.map((m) => m.properties.messageId)).size >= written.length);
    for (const m of received) expect(decodeEnvelope(m.content).events[0].id).toBe(m.properties.messageId);
    const ids = received.map((m) => m.properties.messageId as string);
    const firsts = ids.filter((id, i) => ids.indexOf(id) === i);
    expect(firsts).toEqual(written);
    // Duplicates come only from writes that failed and were written again.
    const duplicates = ids.length - firsts.length;
    expect(duplicates).toBeLessThanOrEqual(tally.failed);
  }, 60_000);

  it('releases its connection on close', async () => {
    const { routingKey } = await bindQueue(channel);
    await expectConnectionReleased('amqp', (url) => new AmqpSink(url, { routingKey }));
  });

  it('rejects with the broker URL, credentials redacted, when the broker cannot be reached', async () => {
    await expectUnreachableRejects('amqp', (url, hooks) => new AmqpSink(url, { hooks }), '/vh');
  });

  describeSinkContract('AmqpSink', () => new AmqpSink(AMQP_URL));
});
