import {
  CloudEventFormatError,
  decodeBatch,
  decodeBinary,
  decodeStructured,
  encodeBatch,
  encodeBinary,
  encodeStructured,
  fromCloudEvent,
  toCloudEvent,
} from '../../lib/codec/cloudevents';
import { eventKind } from '../../lib/model/event-kind';
import { decodeEvent } from '../../lib/codec/envelope';
import type { Event } from '../../lib/model/event';
import { makeEvent } from '../helpers/events';
import { loadFixtures } from '../helpers/fixtures';

const fixtureEvents = new Map(loadFixtures().map((f) => [f.name, decodeEvent(f.parsed.events[0])]));
/** An event as a CloudEvent decoder returns it: with the kind its type names. */
const kinded = (e: Event): Event => ({ ...e, kind: eventKind(e) });
const fixture = (name: string): Event => {
  const e = fixtureEvents.get(name);
  if (!e) throw new Error(`no fixture ${name}`);
  return e;
};

describe('toCloudEvent', () => {
  test('maps a tagged manifest push to a CloudEvent carrying the whole event', () => {
    const e = fixture('manifest-push-with-references');
    expect(toCloudEvent(e)).toEqual({
      specversion: '1.0',
      id: '9be1ea06-0650-4613-9fca-f1aab30f2640',
      source: '/registry/vm:5000',
      type: 'io.distribution.manifest.push',
      subject: 'demo/app:v1',
      time: '2026-11-22T04:33:04.250175963Z',
      datacontenttype: 'application/json',
      data: e,
    });
  });

  test('subject names the digest when there is no tag, the repository alone otherwise', () => {
    expect(toCloudEvent(fixture('blob-mount')).subject).toBe(
      'other/app@sha256:982f41c3ecf04a68ee1fdc723194472cb2a6658590d0a1e0587a64cc8eae8504',
    );
    const repoDelete = makeEvent('delete', { target: { repository: 'demo/app' } });
    expect(toCloudEvent(repoDelete)).toMatchObject({ type: 'io.distribution.repository.delete', subject: 'demo/app' });
    expect(toCloudEvent(fixture('tag-delete')).type).toBe('io.distribution.tag.delete');
  });

  test('source falls back to the instance id when the address is unknown', () => {
    const e = makeEvent('pull', { source: { instanceID: 'abc' } });
    expect(toCloudEvent(e).source).toBe('/registry/abc');
  });
});

describe('fromCloudEvent', () => {
  test('round-trips every fixture', () => {
    for (const e of fixtureEvents.values()) expect(fromCloudEvent(toCloudEvent(e))).toEqual(kinded(e));
  });

  test('fills id, timestamp and action from the CloudEvent when data lacks them', () => {
    const e = fixture('blob-push');
    const { id, timestamp, action, ...rest } = e;
    const back = fromCloudEvent({ ...toCloudEvent(e), data: rest });
    expect(back).toEqual(kinded(e));
    expect([id, timestamp, action]).toEqual([back.id, back.timestamp, back.action]);
  });

  test('accepts data as JSON text', () => {
    const e = fixture('tag-delete');
    expect(fromCloudEvent({ ...toCloudEvent(e), data: JSON.stringify(e) })).toEqual(kinded(e));
  });

  test.each([
    [null, /cloudevent must be a JSON object/],
    [{ specversion: '0.3' }, /specversion must be "1.0", got "0.3"/],
    [{ specversion: '1.0', id: '', source: '/x', type: 'io.distribution.blob.push' }, /cloudevent.id must be a non-empty string/],
    [{ specversion: '1.0', id: '1', source: '/x', type: 'com.example.other' }, /type must start with "io.distribution."/],
    [{ specversion: '1.0', id: '1', source: '/x', type: 'io.distribution.blob.push' }, /data must be a Distribution event object/],
    [
      { specversion: '1.0', id: '1', source: '/x', type: 'io.distribution.blob.push', datacontenttype: 'text/xml', data: {} },
      /datacontenttype must be application\/json, got "text\/xml"/,
    ],
    [
      { specversion: '1.0', id: '1', source: '/x', type: 'io.distribution.blob.push', data: { timestamp: 'yesterday' } },
      /cloudevent.data.timestamp must be an RFC 3339 time/,
    ],
  ])('rejects %j', (ce, message) => {
    expect(() => fromCloudEvent(ce)).toThrow(CloudEventFormatError);
    expect(() => fromCloudEvent(ce)).toThrow(message);
  });

  test('refuses a type whose action is not data.action, naming both', () => {
    const e = fixture('blob-push');
    expect(() => fromCloudEvent({ ...toCloudEvent(e), type: 'io.distribution.blob.delete' })).toThrow(
      'cloudevent.type says the action is "delete" but data.action is "push"',
    );
    expect(() => fromCloudEvent({ ...toCloudEvent(e), type: 'io.distribution.blob.delete.v2' })).toThrow(/action is "delete"/);
  });

  test('reads kind and action from the type, with anything after them ignored and an unknown action left to data', () => {
    const e = fixture('blob-push');
    expect(fromCloudEvent({ ...toCloudEvent(e), type: 'io.distribution.blob.push.v2' })).toEqual(kinded(e));
    const { action: _action, ...noAction } = e;
    expect(fromCloudEvent({ ...toCloudEvent(e), type: 'io.distribution.manifest.push', data: noAction })).toMatchObject({ action: 'push', kind: 'manifest' });
    expect(fromCloudEvent({ ...toCloudEvent(e), type: 'io.distribution.blob' })).toEqual({ ...e, kind: 'blob' });
    expect(fromCloudEvent({ ...toCloudEvent(e), type: 'io.distribution.thing.copy' })).toEqual(e);
    expect(() => fromCloudEvent({ ...toCloudEvent(e), type: 'io.distribution.blob', data: noAction })).toThrow(/cloudevent.data.action must be one of/);
  });

  test.each(['application/json', 'application/json; charset=utf-8', 'Application/JSON', 'text/json', 'application/vnd.docker.distribution.events.v1+json'])(
    'accepts datacontenttype %s',
    (type) => {
      const e = fixture('tag-delete');
      expect(fromCloudEvent({ ...toCloudEvent(e), datacontenttype: type })).toEqual(kinded(e));
    },
  );

  test('names the member of a batch and the field of its data that is wrong', () => {
    const e = fixture('blob-push');
    const bad = { ...toCloudEvent(e), data: { ...toCloudEvent(e).data, target: { size: 'huge' } } };
    expect(() => decodeBatch(JSON.stringify([toCloudEvent(e), bad]))).toThrow('batch[1].data.target.size must be a whole number of bytes, got "huge"');
    expect(() => decodeBatch(JSON.stringify([toCloudEvent(e), { ...bad, type: 'io.distribution.blob.pull' }]))).toThrow(
      'batch[1].type says the action is "pull" but data.action is "push"',
    );
  });

  test('keeps only the event fields of data and does not change what it was given', () => {
    const e = fixture('manifest-push-with-references');
    const ce = toCloudEvent(e);
    const data = { ...ce.data, extra: 'x', kind: 'blob' };
    const copy = JSON.parse(JSON.stringify(data));
    expect(fromCloudEvent({ ...ce, data })).toEqual(kinded(e));
    expect(data).toEqual(copy);
  });
});

describe('encoders', () => {
  const e = fixture('manifest-push-with-references');

  test('structured mode: one JSON object, Distribution key order inside data', () => {
    const { headers, body } = encodeStructured(e);
    expect(headers['content-type']).toBe('application/cloudevents+json; charset=utf-8');
    const parsed = JSON.parse(body);
    expect(parsed).toEqual(JSON.parse(JSON.stringify(toCloudEvent(e))));
    expect(Object.keys(parsed.data.target)).toEqual(['mediaType', 'size', 'digest', 'length', 'repository', 'url', 'tag', 'references']);
    expect(decodeStructured(body)).toEqual(kinded(e));
  });

  test('batch mode: an array of structured events', () => {
    const events = [e, fixture('blob-mount'), fixture('tag-delete')];
    const { headers, body } = encodeBatch(events);
    expect(headers['content-type']).toBe('application/cloudevents-batch+json; charset=utf-8');
    expect(JSON.parse(body).map((c: { type: string }) => c.type)).toEqual([
      'io.distribution.manifest.push',
      'io.distribution.blob.mount',
      'io.distribution.tag.delete',
    ]);
    expect(decodeBatch(body)).toEqual(events.map(kinded));
    expect(JSON.parse(encodeBatch([]).body)).toEqual([]);
  });

  test('binary mode: ce-* headers and the event as a JSON body', () => {
    const { headers, body } = encodeBinary(e);
    expect(headers).toEqual({
      'content-type': 'application/json',
      'ce-specversion': '1.0',
      'ce-id': e.id,
      'ce-source': '/registry/vm:5000',
      'ce-type': 'io.distribution.manifest.push',
      'ce-subject': 'demo/app:v1',
      'ce-time': e.timestamp,
    });
    expect(JSON.parse(body)).toEqual(JSON.parse(JSON.stringify(e)));
    expect(decodeBinary(headers, body)).toEqual(kinded(e));
  });

  test('binary mode percent-encodes header values that need it and decodes them back', () => {
    const { tag: _untagged, ...target } = makeEvent('pull').target;
    const odd = makeEvent('pull', { target: { ...target, repository: 'demo/"ü" 50%' } });
    const { headers, body } = encodeBinary(odd);
    expect(headers['ce-subject']).toBe(`demo/%22%C3%BC%22%2050%25@${odd.target.digest}`);
    const upper = Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toUpperCase(), v]));
    expect(decodeBinary(upper, body)).toEqual(kinded(odd));
  });

  test('decoders name what is wrong', () => {
    expect(() => decodeStructured('{')).toThrow(/structured CloudEvent is not valid JSON/);
    expect(() => decodeBatch('{}')).toThrow(/CloudEvents batch must be a JSON array/);
    expect(() => decodeBatch(`[${encodeStructured(e).body},{"specversion":"1.0"}]`)).toThrow(/batch\[1\].id must be/);
    expect(() => decodeBinary({ 'ce-specversion': '1.0' }, '[]')).toThrow(/cloudevent.id must be a non-empty string/);
  });
});
