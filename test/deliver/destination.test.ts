import { randomUUID } from 'node:crypto';
import mqtt from 'mqtt';
import { decodeEnvelope } from '../../lib';
import { parseNotificationsConfig } from '../../lib/config/load';
import { normalizeEndpoint } from '../../lib/config/normalize';
import { Endpoint } from '../../lib/deliver/endpoint';
import { AmqpSink } from '../../lib/deliver/amqp-sink';
import { createDestinationSink, destinationKind } from '../../lib/deliver/destination';
import { HttpSink } from '../../lib/deliver/http-sink';
import { MqttSink } from '../../lib/deliver/mqtt-sink';
import { NatsSink } from '../../lib/deliver/nats-sink';
import { makeEvent, makeEvents } from '../helpers/events';
import { BROKERS, requireBroker } from '../helpers/brokers';
import { waitFor } from '../helpers/wait';
import { TestReceiver } from '../helpers/http-receiver';

describe('createDestinationSink', () => {
  it('picks the sink by the URL scheme', () => {
    const sink = (url: string) => createDestinationSink(normalizeEndpoint({ name: 'e', url }));
    expect(sink('http://127.0.0.1:1/hook')).toBeInstanceOf(HttpSink);
    expect(sink('https://127.0.0.1:1/hook')).toBeInstanceOf(HttpSink);
    expect(sink('nats://127.0.0.1:4222')).toBeInstanceOf(NatsSink);
    expect(sink('amqp://127.0.0.1')).toBeInstanceOf(AmqpSink);
    expect(sink('amqps://127.0.0.1')).toBeInstanceOf(AmqpSink);
    expect(sink('mqtt://127.0.0.1')).toBeInstanceOf(MqttSink);
    expect(sink('MQTTS://127.0.0.1')).toBeInstanceOf(MqttSink);
    expect(destinationKind('ftp://h/')).toBeUndefined();
  });

  it('shows the URL with credentials redacted, whatever the transport', () => {
    const sink = createDestinationSink(normalizeEndpoint({ name: 'e', url: 'amqp://alice:s3cret@mq.internal/vh' }));
    expect(sink.url).toBe('amqp://redacted:redacted@mq.internal/vh');
  });

  it("gives an HTTP endpoint its configured format when the caller passes no encoder", async () => {
    const receiver = await new TestReceiver().start();
    try {
      const sink = createDestinationSink(normalizeEndpoint({ name: 'e', url: receiver.url, format: 'cloudevents' }));
      const event = makeEvent();
      await sink.write([event]);
      await sink.close();
      expect(receiver.requests[0].headers['content-type']).toBe('application/cloudevents+json; charset=utf-8');
      expect(JSON.parse(receiver.requests[0].body).id).toBe(event.id);
    } finally {
      await receiver.stop();
    }
  });
});

describe('an endpoint whose url is a broker', () => {
  // The whole chain a user configures: YAML-shaped config -> Endpoint (filter, queue,
  // retrying sink) -> the sink the scheme picks, into a real Mosquitto.
  it('delivers through the queue to MQTT, in order, with stats counted', async () => {
    await requireBroker('mqtt');
    const tag = randomUUID().slice(0, 8);
    const subscriber = await mqtt.connectAsync(`mqtt://127.0.0.1:${BROKERS.mqtt.port}`, { protocolVersion: 5, reconnectPeriod: 0 });
    const received: string[] = [];
    subscriber.on('message', (_topic, payload) => received.push(...decodeEnvelope(payload).events.map((e) => e.id)));
    await subscriber.subscribeAsync(`regnotify-endpoint/${tag}/#`, { qos: 1 });
    const config = parseNotificationsConfig({
      endpoints: [{ name: 'bus', url: `mqtt://127.0.0.1:${BROKERS.mqtt.port}`, topic: `regnotify-endpoint/${tag}/{action}/{kind}`, ignore: { actions: ['pull'] } }],
    });
    const endpoint = new Endpoint(config.endpoints[0]);
    try {
      await endpoint.start();
      const events = [...makeEvents(20), makeEvent('pull'), ...makeEvents(9)];
      for (const e of events) await endpoint.write([e]);
      await waitFor(() => received.length >= 29);
      expect(received).toEqual(events.filter((e) => e.action !== 'pull').map((e) => e.id));
      await waitFor(() => endpoint.stats.snapshot().Successes === 29);
      expect(endpoint.stats.snapshot().Pending).toBe(0);
    } finally {
      await endpoint.close();
      await subscriber.endAsync();
    }
  });
});
