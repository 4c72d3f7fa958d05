import { randomUUID } from 'node:crypto';
import mqtt, { type IPublishPacket, type MqttClient } from 'mqtt';
import { decodeEnvelope } from '../../lib';
import { decodeBrokerMessage } from '../../lib/codec/cloudevents-bindings';
import { MqttSink, MQTT_EVENT_ID_PROPERTY } from '../../lib/deliver/mqtt-sink';
import { expectConnectionReleased, expectUnreachableRejects, hookTally, requireBroker, runBrokerOutage, BROKERS } from '../helpers/brokers';
import { makeEvent, makeEvents } from '../helpers/events';
import { describeSinkContract } from '../helpers/sink-contract';
import { waitFor } from '../helpers/wait';

const MQTT_URL = `mqtt://127.0.0.1:${BROKERS.mqtt.port}`;

/** A subscriber (QoS 1) to this test's topics, and what it received. */
async function subscribe(version: 5 | 4 = 5) {
  const tag = randomUUID().slice(0, 8);
  const client = await mqtt.connectAsync(MQTT_URL, { protocolVersion: version, clean: true, reconnectPeriod: 0 });
  const received: IPublishPacket[] = [];
  client.on('message', (_topic, _payload, packet) => received.push(packet));
  await client.subscribeAsync(`regnotify-test/${tag}/#`, { qos: 1 });
  return { client, topic: `regnotify-test/${tag}/{action}/{kind}`, tag, received };
}

describe('MqttSink', () => {
  const clients: MqttClient[] = [];
  beforeAll(() => requireBroker('mqtt'));
  afterAll(async () => {
    for (const c of clients) await c.endAsync();
  });
  const subscriber = async (version: 5 | 4 = 5) => {
    const s = await subscribe(version);
    clients.push(s.client);
    return s;
  };

  it('publishes one QoS 1 message per event, in order, each acknowledged, with the event id as a user property', async () => {
    const { topic, tag, received } = await subscriber();
    const tally = hookTally();
    const sink = new MqttSink(MQTT_URL, { topic, hooks: tally.hooks });
    const events = [...makeEvents(3), makeEvent('delete', { target: { repository: 'demo/app' }, kind: 'repository' }), ...makeEvents(46)];
    await sink.write(events.slice(0, 25));
    await sink.write(events.slice(25));
    await sink.close();
    expect(tally.confirmed).toBe(50);
    await waitFor(() => received.length >= 50);
    expect(received.map((p) => decodeEnvelope(p.payload as Buffer).events[0].id)).toEqual(events.map((e) => e.id));
    expect(received.map((p) => p.properties?.userProperties?.[MQTT_EVENT_ID_PROPERTY])).toEqual(events.map((e) => e.id));
    expect(received[0].topic).toBe(`regnotify-test/${tag}/push/manifest`);
    expect(received[3].topic).toBe(`regnotify-test/${tag}/delete/repository`);
    expect(received[0].qos).toBe(1);
    expect(received[0].properties?.contentType).toBe('application/vnd.docker.distribution.events.v1+json');
  });

  it('sends CloudEvents in binary mode as MQTT 5 user properties named as the attributes', async () => {
    const { topic, received } = await subscriber();
    const sink = new MqttSink(MQTT_URL, { topic, format: 'cloudevents-binary', headers: { 'X-Registry': ['eu-1'] } });
    const event = makeEvent('push', { target: { repository: 'team a/app', tag: 'v1', digest: 'sha256:' + 'ab'.repeat(32) } });
    await sink.write([event]);
    await sink.close();
    await waitFor(() => received.length === 1);
    const p = received[0];
    const u = p.properties?.userProperties as Record<string, string>;
    expect(u.specversion).toBe('1.0');
    expect(u.id).toBe(event.id);
    expect(u.type).toBe('io.distribution.manifest.push');
    expect(u.source).toBe('/registry/test:5000');
    expect(u.subject).toBe('team a/app:v1');
    expect(u.time).toBe(event.timestamp);
    expect(u.datacontenttype).toBeUndefined();
    expect(p.properties?.contentType).toBe('application/json');
    expect(u['X-Registry']).toBe('eu-1');
    expect(decodeBrokerMessage('mqtt5', { body: p.payload as Buffer, contentType: p.properties?.contentType, properties: u }).id).toBe(event.id);
  });

  it('sends CloudEvents in structured mode, over MQTT 3.1.1 too, where the content type is implied', async () => {
    const v5 = await subscriber();
    const v3 = await subscriber(4);
    const event = makeEvent('pull');
    const sink5 = new MqttSink(MQTT_URL, { topic: v5.topic, format: 'cloudevents' });
    const sink3 = new MqttSink(MQTT_URL, { topic: v3.topic, format: 'cloudevents', mqttVersion: '3.1.1' });
    await sink5.write([event]);
    await sink3.write([event]);
    await Promise.all([sink5.close(), sink3.close()]);
    await waitFor(() => v5.received.length === 1 && v3.received.length === 1);
    expect(v5.received[0].properties?.contentType).toBe('application/cloudevents+json; charset=utf-8');
    expect(v3.received[0].properties).toBeUndefined();
    for (const p of [v5.received[0], v3.received[0]]) {
      const ce = JSON.parse(String(p.payload));
      expect([ce.specversion, ce.id, ce.type]).toEqual(['1.0', event.id, 'io.distribution.manifest.pull']);
    }
    expect(decodeBrokerMessage('mqtt3', { body: v3.received[0].payload as Buffer }).id).toBe(event.id);
  });

  it('loses nothing when the broker goes away mid-run: after it is back every event arrived, duplicates only with their own id', async () => {
    const { topic, received } = await subscriber();
    const { written, tally } = await runBrokerOutage('mqtt', (url, hooks) => new MqttSink(url, { topic, timeoutMs: 1000, hooks }));
    const idOf = (p: IPublishPacket) => p.properties?.userProperties?.[MQTT_EVENT_ID_PROPERTY] as string;
    await waitFor(() => new Set(received.map(idOf)).size >= written.length);
    for (const p of received) expect(decodeEnvelope(p.payload as Buffer).events[0].id).toBe(idOf(p));
    const ids = received.map(idOf);
    const firsts = ids.filter((id, i) => ids.indexOf(id) === i);
    expect(firsts).toEqual(written);
    // Duplicates come only from writes that failed and were written again.
    expect(ids.length - firsts.length).toBeLessThanOrEqual(tally.failed);
  }, 60_000);

  it('releases its connection on close', async () => {
    await expectConnectionReleased('mqtt', (url) => new MqttSink(url, { topic: `regnotify-test/${randomUUID().slice(0, 8)}/{action}` }));
  });

  it('rejects with the broker URL, credentials redacted, when the broker cannot be reached', async () => {
    await expectUnreachableRejects('mqtt', (url, hooks) => new MqttSink(url, { hooks }));
  });

  describeSinkContract('MqttSink', () => new MqttSink(MQTT_URL));
});
