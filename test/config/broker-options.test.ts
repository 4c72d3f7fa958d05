import { parseNotificationsConfig } from '../../lib';
import { normalizeEndpoint } from '../../lib/config/normalize';
import { configFailure } from '../helpers/config-failure';

const endpoint = (e: Record<string, unknown>) => parseNotificationsConfig({ endpoints: [{ name: 'b', ...e }] }).endpoints[0];
const failure = (e: Record<string, unknown>) => configFailure(() => endpoint(e)).message;

describe('broker destinations in the configuration', () => {
  it('takes nats://, amqp(s):// and mqtt(s):// URLs, each with its own fields and their defaults', () => {
    expect(endpoint({ url: 'nats://127.0.0.1:4222' })).toMatchObject({ subject: 'registry.events.{action}.{kind}', createStream: false });
    expect(endpoint({ url: 'nats://127.0.0.1:4222' }).stream).toBeUndefined();
    expect(endpoint({ url: 'amqps://u:p@mq.internal/vh' })).toMatchObject({ exchange: 'amq.topic', routingKey: 'registry.events.{action}.{kind}' });
    expect(endpoint({ url: 'mqtt://127.0.0.1' })).toMatchObject({ topic: 'registry/events/{action}/{kind}', qos: 1, mqttVersion: '5' });
    expect(endpoint({ url: 'mqtts://h', qos: 2, mqttversion: '3.1.1', topic: 'r/{repository}' })).toMatchObject({ qos: 2, mqttVersion: '3.1.1', topic: 'r/{repository}' });
    expect(endpoint({ url: 'mqtt://h', mqttversion: 5 }).mqttVersion).toBe('5');
    expect(endpoint({ url: 'nats://h', stream: 'EVENTS', createstream: true, subject: 'reg.{repository}' })).toMatchObject({ stream: 'EVENTS', createStream: true, subject: 'reg.{repository}' });
  });

  it('keeps HTTP endpoints free of broker fields', () => {
    const e = endpoint({ url: 'https://h/hook' });
    for (const key of ['subject', 'stream', 'createStream', 'exchange', 'routingKey', 'topic', 'qos', 'mqttVersion']) expect(e).not.toHaveProperty(key);
  });

  it("refuses a field of another transport's, naming the field and the scheme it is for", () => {
    expect(failure({ url: 'https://h/hook', topic: 'a/b' })).toBe('notifications.endpoints[0].topic: only for mqtt:// endpoints; this one\'s URL is https:');
    expect(failure({ url: 'nats://h', routingkey: 'a' })).toMatch(/^notifications\.endpoints\[0\]\.routingkey: only for amqp:\/\/ endpoints/);
  });

  it('lists the schemes it takes when the URL has another', () => {
    expect(failure({ url: 'ftp://h/' })).toMatch(/unsupported scheme "ftp:"; use http:, https:, nats:, amqp:, amqps:, mqtt:, mqtts:/);
  });

  it('refuses what a broker cannot carry: batch CloudEvents, webhook signatures, binary mode on MQTT 3.1.1', () => {
    expect(failure({ url: 'nats://h', format: 'cloudevents-batch' })).toMatch(/format: the NATS binding of CloudEvents has no batch mode/);
    expect(failure({ url: 'amqp://h', secrets: ['whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw'] })).toMatch(/secrets: Standard Webhooks signatures are for HTTP endpoints/);
    expect(failure({ url: 'mqtt://h', mqttversion: '3.1.1', format: 'cloudevents-binary' })).toMatch(/format: MQTT 3\.1\.1 carries no message properties/);
  });

  it('refuses a QoS without acknowledgement, an unknown MQTT version and bad templates, naming the field', () => {
    expect(failure({ url: 'mqtt://h', qos: 0 })).toMatch(/^notifications\.endpoints\[0\]\.qos: expected 1 or 2/);
    expect(failure({ url: 'mqtt://h', mqttversion: '3.1' })).toMatch(/mqttversion: expected 5 or 3\.1\.1/);
    expect(failure({ url: 'nats://h', subject: 'a.{tag}' })).toMatch(/^notifications\.endpoints\[0\]\.subject: route "a\.\{tag\}": unknown placeholder \{tag\}/);
    expect(failure({ url: 'amqp://h', routingkey: 'a.#' })).toMatch(/routingkey: .*"#" is a wildcard/);
    expect(failure({ url: 'mqtt://h', topic: 'a/+' })).toMatch(/topic: .*"\+" is a wildcard/);
  });

  it('asks for the stream createstream would create, and a stream name NATS takes', () => {
    expect(failure({ url: 'nats://h', createstream: true })).toMatch(/createstream: names no stream to create: set stream too/);
    expect(failure({ url: 'nats://h', stream: 'a.b' })).toMatch(/stream: a stream name cannot hold/);
  });

  it('names fields as code spells them for new Endpoint(...) and createNotifications', () => {
    expect(() => normalizeEndpoint({ name: 'b', url: 'mqtt://h', routingKey: 'x' })).toThrow(/^endpoint\.routingKey: only for amqp:\/\/ endpoints/);
    expect(normalizeEndpoint({ name: 'b', url: 'amqp://h', exchange: 'registry', routingKey: '{kind}' })).toMatchObject({ exchange: 'registry', routingKey: '{kind}' });
  });
});
