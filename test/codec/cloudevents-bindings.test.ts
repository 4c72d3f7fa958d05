import { brokerMessageEncoder, decodeBrokerMessage, type BrokerBinding } from '../../lib/codec/cloudevents-bindings';
import { encodeEnvelope } from '../../lib/codec/envelope';
import { AMQP_ROUTES, MQTT_ROUTES, NATS_ROUTES, RouteTemplateError, routePattern, routeTemplate } from '../../lib/codec/route-template';
import { makeEvent } from '../helpers/events';

const event = makeEvent('push', {
  target: { repository: 'team a/app', tag: 'v1', digest: 'sha256:' + 'ab'.repeat(32), mediaType: 'application/vnd.oci.image.manifest.v1+json', size: 7 },
});

describe('CloudEvents bindings for brokers', () => {
  it('NATS binary mode: every attribute a ce- header, datacontenttype too, values percent-encoded', () => {
    const m = brokerMessageEncoder('nats', 'cloudevents-binary')(event);
    expect(m.contentType).toBeUndefined();
    expect(m.properties).toEqual({
      'ce-specversion': '1.0',
      'ce-id': event.id,
      'ce-source': '/registry/test:5000',
      'ce-type': 'io.distribution.manifest.push',
      'ce-subject': 'team%20a/app:v1',
      'ce-time': event.timestamp,
      'ce-datacontenttype': 'application/json',
    });
    expect(JSON.parse(m.body).target.repository).toBe('team a/app');
  });

  it('AMQP binary mode: cloudEvents_ application properties, datacontenttype as the content-type property', () => {
    const m = brokerMessageEncoder('amqp', 'cloudevents-binary')(event);
    expect(m.contentType).toBe('application/json');
    expect(m.properties).toEqual({
      cloudEvents_specversion: '1.0',
      cloudEvents_id: event.id,
      cloudEvents_source: '/registry/test:5000',
      cloudEvents_type: 'io.distribution.manifest.push',
      cloudEvents_subject: 'team a/app:v1',
      cloudEvents_time: event.timestamp,
    });
  });

  it('MQTT 5 binary mode: user properties named as the attributes, datacontenttype as Content Type', () => {
    const m = brokerMessageEncoder('mqtt5', 'cloudevents-binary')(event);
    expect(m.contentType).toBe('application/json');
    expect(Object.keys(m.properties).sort()).toEqual(['id', 'source', 'specversion', 'subject', 'time', 'type']);
    expect(m.properties.subject).toBe('team a/app:v1');
  });

  it('MQTT 3.1.1 has no binary mode, and its structured mode carries no content type', () => {
    expect(() => brokerMessageEncoder('mqtt3', 'cloudevents-binary')).toThrow(/MQTT 3\.1\.1 carries no message properties/);
    const m = brokerMessageEncoder('mqtt3', 'cloudevents')(event);
    expect(m.contentType).toBeUndefined();
    expect(JSON.parse(m.body)).toMatchObject({ specversion: '1.0', id: event.id, type: 'io.distribution.manifest.push', data: { id: event.id } });
  });

  it('structured mode says application/cloudevents+json wherever the protocol has a content type', () => {
    for (const binding of ['nats', 'amqp', 'mqtt5'] as const) {
      expect(brokerMessageEncoder(binding, 'cloudevents')(event).contentType).toBe('application/cloudevents+json; charset=utf-8');
    }
  });

  it("the distribution format is Distribution's envelope of the one event, with its media type", () => {
    const m = brokerMessageEncoder('amqp', 'distribution', 'v2')(event);
    expect(m.body).toBe(encodeEnvelope([event], { version: 'v2' }));
    expect(m.contentType).toBe('application/vnd.docker.distribution.events.v2+json');
    expect(brokerMessageEncoder('mqtt3', 'distribution')(event).contentType).toBeUndefined();
  });

  const cases: [BrokerBinding, 'distribution' | 'cloudevents' | 'cloudevents-binary'][] = [
    ['nats', 'distribution'], ['nats', 'cloudevents'], ['nats', 'cloudevents-binary'],
    ['amqp', 'distribution'], ['amqp', 'cloudevents'], ['amqp', 'cloudevents-binary'],
    ['mqtt5', 'distribution'], ['mqtt5', 'cloudevents'], ['mqtt5', 'cloudevents-binary'],
    ['mqtt3', 'distribution'], ['mqtt3', 'cloudevents'],
  ];
  test.each(cases)('%s, %s: the message decodes back to the event', (binding, format) => {
    const m = brokerMessageEncoder(binding, format)(event);
    const back = decodeBrokerMessage(binding, m);
    expect(back.id).toBe(event.id);
    expect(back.target).toEqual(event.target);
    expect(back.action).toBe('push');
  });

  it('reads NATS headers in any case and the older cloudEvents: prefix of AMQP', () => {
    const nats = brokerMessageEncoder('nats', 'cloudevents-binary')(event);
    const upper = Object.fromEntries(Object.entries(nats.properties).map(([k, v]) => [k.toUpperCase(), v]));
    expect(decodeBrokerMessage('nats', { body: nats.body, properties: upper }).target.repository).toBe('team a/app');
    // Older senders double-quoted values (with backslash escapes) instead of percent-encoding.
    const quoted = { ...nats.properties, 'ce-type': '"io.distribution.blob.push"', 'ce-source': '"/registry/\\"x\\""' };
    expect(decodeBrokerMessage('nats', { body: nats.body, properties: quoted }).kind).toBe('blob');
    const amqp = brokerMessageEncoder('amqp', 'cloudevents-binary')(event);
    const colon = Object.fromEntries(Object.entries(amqp.properties).map(([k, v]) => [k.replace('cloudEvents_', 'cloudEvents:'), Buffer.from(v)]));
    expect(decodeBrokerMessage('amqp', { body: amqp.body, contentType: amqp.contentType, properties: colon }).id).toBe(event.id);
  });

  it('refuses a message that is neither a CloudEvent nor an envelope of one event', () => {
    expect(() => decodeBrokerMessage('mqtt3', { body: '{"hello":1}' })).toThrow(/not an envelope/);
    expect(() => decodeBrokerMessage('mqtt3', { body: encodeEnvelope([event, event]) })).toThrow(/carries one event; this envelope has 2/);
  });
});

describe('route templates', () => {
  const blobDelete = makeEvent('delete', { target: { repository: 'acme/my.app', digest: 'sha256:' + 'c'.repeat(64) }, kind: 'blob' });

  it('fill {action}, {kind} and {repository} as each broker spells routes', () => {
    expect(routeTemplate('registry.events.{action}.{kind}', NATS_ROUTES)(blobDelete)).toBe('registry.events.delete.blob');
    expect(routeTemplate('ev.{repository}.{action}', NATS_ROUTES)(blobDelete)).toBe('ev.acme.my_app.delete');
    expect(routeTemplate('ev.{repository}', AMQP_ROUTES)(event)).toBe('ev.team_a.app');
    expect(routeTemplate('registry/{repository}/{kind}', MQTT_ROUTES)(blobDelete)).toBe('registry/acme/my.app/blob');
  });

  it('refuse unknown placeholders, stray braces and wildcards', () => {
    expect(() => routeTemplate('a.{tag}', NATS_ROUTES)).toThrow(RouteTemplateError);
    expect(() => routeTemplate('a.{tag}', NATS_ROUTES)).toThrow('unknown placeholder {tag}; use {action}, {kind}, {repository}');
    expect(() => routeTemplate('a.{action', NATS_ROUTES)).toThrow(/brace/);
    expect(() => routeTemplate('a.>', NATS_ROUTES)).toThrow(/">" is a wildcard/);
    expect(() => routeTemplate('a.#', AMQP_ROUTES)).toThrow(/"#" is a wildcard/);
    expect(() => routeTemplate('a/+/{action}', MQTT_ROUTES)).toThrow(/"\+" is a wildcard/);
    expect(() => routeTemplate('', MQTT_ROUTES)).toThrow(/empty/);
  });

  it('give the pattern of every route a template makes', () => {
    expect(routePattern('registry.events.{action}.{kind}', '*', '>', '.')).toBe('registry.events.*.*');
    expect(routePattern('ev.{action}.{repository}.x', '*', '>', '.')).toBe('ev.*.>');
  });
});
