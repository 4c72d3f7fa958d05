import { decodeEnvelope, encodeEnvelope, EnvelopeFormatError, type Event } from '../../lib';
import { encodeEvent, envelopeMediaType } from '../../lib/codec/envelope';
import { eventTimestamp, formatTimestamp, newEventId } from '../../lib/model/event';
import { loadFixtures } from '../helpers/fixtures';

const fixtures = loadFixtures();

describe('envelope encoding against Distribution 2.8.2 deliveries', () => {
  it('has fixtures to compare with', () => {
    expect(fixtures.map((f) => f.name)).toEqual(
      expect.arrayContaining(['blob-mount', 'blob-push', 'manifest-delete', 'manifest-push-with-references', 'tag-delete']),
    );
  });

  it.each(fixtures.map((f) => [f.name, f] as const))('%s: decoding and encoding again gives the same bytes', (_name, f) => {
    expect(encodeEnvelope(decodeEnvelope(f.body).events)).toBe(f.body);
  });

  it.each(fixtures.map((f) => [f.name, f] as const))('%s: decodes to the captured JSON', (_name, f) => {
    expect(decodeEnvelope(f.body)).toEqual(f.parsed);
  });

  it('sends the v1 media type by default, as the fixtures carry', () => {
    expect(envelopeMediaType()).toBe(fixtures[0].headers['content-type']);
    expect(envelopeMediaType('v2')).toBe('application/vnd.docker.distribution.events.v2+json');
  });

  it('writes one compact line on request', () => {
    const f = fixtures.find((x) => x.name === 'blob-push')!;
    const compact = encodeEnvelope(decodeEnvelope(f.body).events, { indent: false });
    expect(compact).not.toContain('\n');
    expect(JSON.parse(compact)).toEqual(f.parsed);
  });
});

describe('Go encoder rules', () => {
  const base = decodeEnvelope(loadFixtures().find((f) => f.name === 'tag-delete')!.body).events[0];

  it('omits empty target fields in v1 and keeps the records that are always present', () => {
    const event: Event = { ...base, target: { repository: 'r' }, actor: {}, source: {}, request: { id: 'x', method: 'GET', useragent: '' } };
    const json = JSON.parse(encodeEnvelope([event]));
    expect(Object.keys(json.events[0])).toEqual(['id', 'timestamp', 'action', 'target', 'request', 'actor', 'source']);
    expect(json.events[0].target).toEqual({ repository: 'r' });
    expect(json.events[0].actor).toEqual({});
    expect(json.events[0].request).toEqual({ id: 'x', method: 'GET', useragent: '' });
  });

  it('writes mediaType, digest and size always, in OCI order, in v2', () => {
    const json = JSON.parse(encodeEnvelope([base], { version: 'v2' }));
    expect(Object.keys(json.events[0].target)).toEqual(['mediaType', 'digest', 'size', 'repository', 'tag']);
    expect(json.events[0].target).toMatchObject({ mediaType: '', digest: '', size: 0 });
  });

  it('escapes <, > and & as Go does', () => {
    const event: Event = { ...base, request: { ...base.request, useragent: 'a<b>&c\u2028' } };
    expect(encodeEvent(event, { indent: false })).toContain('"useragent":"a\\u003cb\\u003e\\u0026c\\u2028"');
    expect(decodeEnvelope(encodeEnvelope([event])).events[0].request.useragent).toBe('a<b>&c\u2028');
  });

  it('encodes an empty envelope as Go omits an empty events list', () => {
    expect(encodeEnvelope([])).toBe('{}');
    expect(decodeEnvelope('{}')).toEqual({ events: [] });
  });
});

describe('decoding bad input', () => {
  const good = JSON.parse(loadFixtures()[0].body).events[0];
  it.each([
    ['not JSON', '{"events": [', /not valid JSON/],
    ['an array', '[]', /must be a JSON object/],
    ['events not a list', '{"events": {}}', /"events" must be an array/],
    ['an event without id', JSON.stringify({ events: [{ ...good, id: undefined }] }), /events\[0\]\.id/],
    ['a bad timestamp', JSON.stringify({ events: [{ ...good, timestamp: 'yesterday' }] }), /events\[0\]\.timestamp/],
    ['an unknown action', JSON.stringify({ events: [good, { ...good, action: 'explode' }] }), /events\[1\]\.action must be one of push, pull, mount, delete, got "explode"/],
    ['a target that is not an object', JSON.stringify({ events: [{ ...good, target: 'x' }] }), /events\[0\]\.target must be an object/],
  ])('refuses %s, naming what is wrong', (_what, body, message) => {
    expect(() => decodeEnvelope(body)).toThrow(EnvelopeFormatError);
    expect(() => decodeEnvelope(body)).toThrow(message);
  });
});

describe('ids and timestamps', () => {
  it('makes UUIDv7 ids that sort by creation', () => {
    const ids = Array.from({ length: 50 }, () => newEventId());
    for (const id of ids) expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect([...ids].sort()).toEqual(ids);
    expect(new Set(ids).size).toBe(ids.length);
  });

  it('formats RFC 3339 with nanoseconds, trailing zeros trimmed, as Go does', () => {
    expect(formatTimestamp(1_795_000_000_123_456_000n)).toBe('2026-11-18T11:06:40.123456Z');
    expect(formatTimestamp(1_795_000_000_000_000_000n)).toBe('2026-11-18T11:06:40Z');
    expect(formatTimestamp(1_795_000_000_000_000_001n)).toBe('2026-11-18T11:06:40.000000001Z');
  });

  it('stamps events with the current time, never going backwards', () => {
    const stamps = Array.from({ length: 100 }, () => eventTimestamp());
    for (const s of stamps) expect(Math.abs(Date.parse(s) - Date.now())).toBeLessThan(60_000);
    const asNs = stamps.map((s) => {
      const [sec, frac = ''] = s.replace('Z', '').split('.');
      return BigInt(Date.parse(sec + 'Z')) * 1_000_000n + BigInt(frac.padEnd(9, '0'));
    });
    for (let i = 1; i < asNs.length; i++) expect(asNs[i] >= asNs[i - 1]).toBe(true);
  });
});
