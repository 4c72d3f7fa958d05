import { decodeEnvelope, encodeEnvelope, EnvelopeFormatError, type Event } from '../../lib';
import { decodeEvent, encodeEvent, envelopeMediaType, storedEventJson } from '../../lib/codec/envelope';
import { eventTimestamp, formatTimestamp, newEventId } from '../../lib/model/event';
import { loadFixtures } from '../helpers/fixtures';
import { collectGarbage } from '../helpers/gc';

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

  it('encodes an event for the stores once per event object, with its kind', () => {
    const event: Event = { ...base, kind: 'tag' };
    const json = storedEventJson(event);
    expect(json).toBe(encodeEvent(event, { indent: false, withKind: true }));
    expect(decodeEvent(JSON.parse(json))).toEqual(event);
    // The SQLite queue and delivery log share the string made first: an event is not
    // changed once made, so a later call does not encode it again.
    event.target = { ...event.target, tag: 'changed' };
    expect(storedEventJson(event)).toBe(json);
    expect(storedEventJson({ ...event })).toContain('"tag":"changed"');
  });

  it('encodes an empty envelope as Go omits an empty events list', () => {
    expect(encodeEnvelope([])).toBe('{}');
    expect(decodeEnvelope('{}')).toEqual({ events: [] });
  });

  // The indented envelope is written out field by field; the compact one goes through
  // JSON.stringify. Both must say the same, laid out as JSON.stringify(…, null, 3) would.
  const goEscaped = (text: string) => text.replace(/[<>&\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
  const platform = { architecture: 'arm64', os: 'linux', variant: 'v8', 'os.features': ['a', 'b'] };
  const varied: Event[] = [
    base,
    { ...base, timestamp: undefined as unknown as string, target: {}, request: { id: '', method: '', useragent: '' }, actor: { name: '' }, source: { addr: 'h:5000' } },
    {
      ...base,
      action: 'push',
      kind: 'manifest',
      actor: { name: 'ann<e>' },
      target: {
        mediaType: 'application/vnd.oci.image.index.v1+json',
        size: 0,
        digest: 'sha256:' + 'd'.repeat(64),
        urls: ['https://mirror/&x'],
        annotations: { 'org.opencontainers.image.title': 'tiny & \u2028 "quoted"', empty: '' },
        platform,
        data: 'e30=',
        artifactType: 'application/x.sbom',
        length: 12,
        repository: 'team/app',
        fromRepository: 'base/app',
        url: 'http://r/v2/team/app/manifests/sha256:d',
        tag: 'v1.0',
        references: [
          { mediaType: 'application/vnd.oci.image.manifest.v1+json', size: 7, digest: 'sha256:' + 'e'.repeat(64), platform, annotations: {} },
          { digest: 'sha256:' + 'f'.repeat(64), urls: [] },
        ],
      },
    },
    { ...base, target: { repository: 'r', references: [], urls: [], annotations: {} }, request: { ...base.request, addr: '', host: 'h\u00e9' } },
  ];

  it.each(['v1', 'v2'] as const)('lays the indented %s envelope out as the compact one, indented by three', (version) => {
    for (let n = 1; n <= varied.length; n++) {
      const events = varied.slice(0, n);
      const compact = JSON.parse(encodeEnvelope(events, { version, indent: false }));
      expect(encodeEnvelope(events, { version })).toBe(goEscaped(JSON.stringify(compact, null, 3)));
    }
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
  const UUID_V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
  /** The Unix milliseconds in a UUIDv7's first 48 bits. */
  const msOf = (id: string) => parseInt(id.slice(0, 8) + id.slice(9, 13), 16);

  it('makes UUIDv7 ids that sort by creation and carry the time they were made', () => {
    const before = Date.now();
    // Enough to draw the random pool several times over.
    const ids = Array.from({ length: 20_000 }, () => newEventId());
    const after = Date.now();
    for (const id of ids) expect(id).toMatch(UUID_V7);
    expect(ids.every((id, i) => i === 0 || ids[i - 1] < id)).toBe(true);
    expect(new Set(ids).size).toBe(ids.length);
    expect(msOf(ids[0])).toBeGreaterThanOrEqual(before);
    expect(msOf(ids[ids.length - 1])).toBeLessThanOrEqual(after + 1);
    // The 62 random bits differ from id to id, not only the counter.
    expect(new Set(ids.map((id) => id.slice(19))).size).toBe(ids.length);
  });

  it('makes each id one flat string, which the log and the queue keep cheaply', () => {
    // Joined from its parts with `+`, an id is a rope of cons cells: about 480 bytes held
    // for as long as the event, against 57 for the flat string.
    collectGarbage();
    const before = process.memoryUsage().heapUsed;
    const ids = Array.from({ length: 50_000 }, () => newEventId());
    collectGarbage();
    const perId = (process.memoryUsage().heapUsed - before) / ids.length;
    expect(ids).toHaveLength(50_000);
    expect(perId).toBeLessThan(150);
  });

  it('keeps ids in order past 4,096 in one millisecond, and when the clock goes back', () => {
    // Ahead of every id made so far in this process, which only go up.
    const now = Date.now() + 86_400_000;
    jest.useFakeTimers({ now });
    try {
      const ids = Array.from({ length: 5_000 }, () => newEventId());
      jest.setSystemTime(now - 5_000);
      ids.push(newEventId());
      expect(ids.every((id, i) => i === 0 || ids[i - 1] < id)).toBe(true);
      for (const id of ids) expect(id).toMatch(UUID_V7);
      // The counter ran out within the first millisecond: the next one was borrowed.
      expect(msOf(ids[0])).toBe(now);
      expect(msOf(ids[ids.length - 1])).toBe(now + 1);
    } finally {
      jest.useRealTimers();
    }
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

describe('field checks', () => {
  const ok = { id: 'x', timestamp: '2025-01-01T00:00:00Z', action: 'push' };
  const decode = (event: Record<string, unknown>) => decodeEnvelope(JSON.stringify({ events: [event] })).events[0];
  const at = (record: string, field: string, value: unknown): Record<string, unknown> =>
    record === 'target.references[0]' ? { ...ok, target: { references: [{ [field]: value }] } } : { ...ok, [record]: { [field]: value } };

  const fields: [string, string, string][] = [
    ...['mediaType', 'digest', 'data', 'artifactType', 'repository', 'fromRepository', 'url', 'tag'].map((f) => ['target', f, 'a string'] as [string, string, string]),
    ['target', 'size', 'a whole number of bytes'],
    ['target', 'length', 'a whole number of bytes'],
    ['target', 'urls', 'a list of strings'],
    ['target', 'annotations', 'an object'],
    ['target', 'platform', 'an object'],
    ...['mediaType', 'digest', 'data', 'artifactType'].map((f) => ['target.references[0]', f, 'a string'] as [string, string, string]),
    ['target.references[0]', 'size', 'a whole number of bytes'],
    ['target.references[0]', 'urls', 'a list of strings'],
    ['target.references[0]', 'annotations', 'an object'],
    ['target.references[0]', 'platform', 'an object'],
    ...['id', 'addr', 'host', 'method', 'useragent'].map((f) => ['request', f, 'a string'] as [string, string, string]),
    ['actor', 'name', 'a string'],
    ['source', 'addr', 'a string'],
    ['source', 'instanceID', 'a string'],
  ];

  it.each(fields)('refuses %s.%s of the wrong type, naming it', (record, field, expected) => {
    const wrong = expected === 'a string' ? 7 : expected === 'an object' ? ['a'] : expected === 'a list of strings' ? ['a', 1] : 1.5;
    expect(() => decode(at(record, field, wrong))).toThrow(`events[0].${record}.${field} must be ${expected}, got ${JSON.stringify(wrong)}`);
    if (expected === 'a whole number of bytes') {
      expect(() => decode(at(record, field, -1))).toThrow(`events[0].${record}.${field} must be`);
      expect(() => decode(at(record, field, '12'))).toThrow(`events[0].${record}.${field} must be`);
    }
  });

  it.each(fields)('keeps %s.%s when set, drops it when empty', (record, field, expected) => {
    const good = expected === 'a string' ? 'v' : expected === 'an object' ? { a: 'b' } : expected === 'a list of strings' ? ['a'] : 12;
    const pick = (e: Event): Record<string, unknown> =>
      (record === 'target.references[0]' ? e.target.references![0] : (e as unknown as Record<string, Record<string, unknown>>)[record]) as Record<string, unknown>;
    expect(pick(decode(at(record, field, good)))[field]).toEqual(good);
    // Go omits empty values; they read as absent whatever the field's type.
    for (const empty of [null, '', 0]) {
      const kept = pick(decode(at(record, field, empty)));
      expect(kept[field]).toBe(['id', 'method', 'useragent'].includes(field) && record === 'request' ? '' : undefined);
    }
  });

  it('drops unknown fields, keeps a known kind, and fills the request fields Go always writes', () => {
    const e = decode({ ...ok, extra: 1, kind: 'tag', target: { repository: 'r', other: 'x' }, request: { addr: 'a' }, actor: null });
    expect(e).toEqual({ ...ok, kind: 'tag', target: { repository: 'r' }, request: { id: '', addr: 'a', method: '', useragent: '' }, actor: {}, source: {} });
    expect(Object.keys(e.request)).toEqual(['id', 'addr', 'method', 'useragent']);
    expect(decode({ ...ok, kind: 'volume' })).not.toHaveProperty('kind');
    expect(decode({ ...ok, target: { references: [] } }).target).toEqual({ references: [] });
  });

  it('names the event by its place in the envelope, or as decodeEvent is told', () => {
    expect(() => decodeEnvelope(JSON.stringify({ events: [ok, ok, { ...ok, source: { addr: 1 } }] }))).toThrow('events[2].source.addr must be a string, got 1');
    expect(() => decodeEvent({ ...ok, target: 'x' }, 'row 7')).toThrow('row 7.target must be an object');
    expect(() => decodeEvent({ ...ok, target: { references: {} } })).toThrow('event.target.references must be a list');
    expect(() => decodeEvent({ ...ok, action: 'copy' })).toThrow('event.action must be one of push, pull, mount, delete, got "copy"');
  });

  // What the check stands for: the RFC 3339 form Go writes, read by Date.parse without NaN.
  const RFC3339 = /^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:[Zz]|[+-]\d{2}:\d{2})$/;
  const reference = (s: string) => RFC3339.test(s) && !Number.isNaN(Date.parse(s));
  const accepts = (s: string) => {
    try {
      decodeEvent({ ...ok, timestamp: s });
      return true;
    } catch (err) {
      expect((err as Error).message).toBe(`event.timestamp must be an RFC 3339 time, got ${JSON.stringify(s)}`);
      return false;
    }
  };

  it('accepts exactly the timestamps of RFC 3339 form that Date.parse reads', () => {
    const bases = [
      '2025-01-01T00:00:00Z',
      '2024-02-29t23:59:59.123456789+05:30',
      '2026-11-22T04:33:04.348578004Z',
      '1999-12-31T24:00:00-00:00',
      '2025-06-30T24:00:00.000z',
    ];
    const fractions = ['', '.', '.0', '.000', '.0001', '.0009', '.001', '.1', '.999999999', '.a', '..1'];
    const zones = ['Z', 'z', '+00:00', '-23:59', '+24:00', '+23:60', '+1:00', '+01:0', '+0100', 'UTC', '', 'Z ', 'ZZ'];
    const cases = new Set<string>();
    for (const base of bases) {
      // Every position, every character that matters to the form.
      for (let i = 0; i < base.length; i++) {
        for (const ch of ['0', '1', '2', '3', '5', '9', '-', ':', 'T', 't', 'Z', 'z', '.', '+', ' ', 'x', '']) cases.add(base.slice(0, i) + ch + base.slice(i + 1));
      }
      // Every value of every two-digit field.
      for (const at of [5, 8, 11, 14, 17]) {
        for (let n = 0; n < 100; n++) cases.add(base.slice(0, at) + String(n).padStart(2, '0') + base.slice(at + 2));
      }
      for (const fraction of fractions) for (const zone of zones) for (const time of ['24:00:00', '23:59:59', '24:00:01', '00:00:00']) {
        cases.add(`${base.slice(0, 11)}${time}${fraction}${zone}`);
      }
    }
    let accepted = 0;
    for (const s of cases) {
      expect([s, accepts(s)]).toEqual([s, reference(s)]);
      if (reference(s)) accepted++;
    }
    // Both sides of the line are well covered.
    expect(accepted).toBeGreaterThan(500);
    expect(cases.size - accepted).toBeGreaterThan(500);
  });
});
