import {
  EVENT_ACTIONS,
  EVENT_KINDS,
  type EventAction,
  type EventKind,
  EVENTS_MEDIA_TYPE_V1,
  EVENTS_MEDIA_TYPE_V2,
  type Descriptor,
  type EnvelopeVersion,
  type Envelope,
  type Event,
  type RequestRecord,
  type Target,
} from '../model/event';

export interface EncodeOptions {
  /**
   * Which Distribution generation to imitate: `v1` (2.x, omits empty descriptor fields)
   * or `v2` (3.x, always writes `mediaType`, `digest` and `size`).
   * @default 'v1'
   */
  version?: EnvelopeVersion;
  /**
   * Indent with three spaces as Distribution does; false writes one compact line.
   * @default true
   */
  indent?: boolean;
  /**
   * Also write the event's `kind`, for stores that must keep it; Distribution's envelope
   * has no such field, so it is never sent. @default false
   */
  withKind?: boolean;
}

/** Thrown by `decodeEnvelope` for a body that is not an envelope of events. */
export class EnvelopeFormatError extends Error {
  override readonly name = 'EnvelopeFormatError';
  constructor(message: string) {
    super(message);
  }
}

/** The `Content-Type` of an envelope of the given version. */
export function envelopeMediaType(version: EnvelopeVersion = 'v1'): string {
  return version === 'v2' ? EVENTS_MEDIA_TYPE_V2 : EVENTS_MEDIA_TYPE_V1;
}

/**
 * Encodes events as Distribution's envelope, byte for byte what its Go encoder writes:
 * Go's key order, its omit-when-empty rules and its escaping of `<`, `>` and `&`.
 */
export function encodeEnvelope(events: readonly Event[], options: EncodeOptions = {}): string {
  const version = options.version ?? 'v1';
  // Go omits an empty `events` slice entirely (`omitempty`).
  const body = events.length === 0 ? {} : { events: events.map((e) => orderEvent(e, version)) };
  const text = options.indent === false ? JSON.stringify(body) : JSON.stringify(body, null, 3);
  return escapeLikeGo(text);
}

/** Encodes one event with the same rules as `encodeEnvelope` (used by stores and CloudEvents). */
export function encodeEvent(event: Event, options: EncodeOptions = {}): string {
  const ordered = orderEvent(event, options.version ?? 'v1');
  if (options.withKind && event.kind) ordered.kind = event.kind;
  return escapeLikeGo(options.indent === false ? JSON.stringify(ordered) : JSON.stringify(ordered, null, 3));
}

/** `storedEventJson`'s strings, by event object. */
const storedJson = new WeakMap<Event, string>();

/**
 * The compact JSON every store keeps an event in (`encodeEvent` without indentation, with
 * its kind: queues, spool, dead letters, the SQLite and Redis delivery logs), made once per
 * event object: a queue and its delivery log, or the spool and the store it forwards to,
 * write the same string instead of each encoding the event.
 */
export function storedEventJson(event: Event): string {
  let json = storedJson.get(event);
  if (json === undefined) storedJson.set(event, (json = encodeEvent(event, { indent: false, withKind: true })));
  return json;
}

const GO_ESCAPES: Record<string, string> = {
  '<': '\\u003c',
  '>': '\\u003e',
  '&': '\\u0026',
  '\u2028': '\\u2028',
  '\u2029': '\\u2029',
};

const GO_UNSAFE_ALL = /[<>&\u2028\u2029]/g;
const goEscape = (c: string): string => GO_ESCAPES[c];

function escapeLikeGo(json: string): string {
  // Five searches for one character each are a twentieth of the cost of one scan with the
  // character class over a whole envelope; most envelopes have none of them.
  const unsafe = json.indexOf('<') >= 0 || json.indexOf('>') >= 0 || json.indexOf('&') >= 0 || json.indexOf('\u2028') >= 0 || json.indexOf('\u2029') >= 0;
  return unsafe ? json.replace(GO_UNSAFE_ALL, goEscape) : json;
}

type Json = Record<string, unknown>;

function put(out: Json, key: string, value: unknown): void {
  if (value === undefined || value === null || value === '' || value === 0) return;
  if (Array.isArray(value) && value.length === 0) return;
  if (typeof value === 'object' && !Array.isArray(value) && Object.keys(value).length === 0) return;
  out[key] = value;
}

function orderDescriptor(d: Descriptor, version: EnvelopeVersion, out: Json = {}): Json {
  if (version === 'v2') {
    out.mediaType = d.mediaType ?? '';
    out.digest = d.digest ?? '';
    out.size = d.size ?? 0;
    put(out, 'urls', d.urls);
    put(out, 'annotations', d.annotations);
    put(out, 'data', d.data);
    put(out, 'platform', d.platform);
    put(out, 'artifactType', d.artifactType);
  } else {
    put(out, 'mediaType', d.mediaType);
    put(out, 'size', d.size);
    put(out, 'digest', d.digest);
    put(out, 'urls', d.urls);
    put(out, 'annotations', d.annotations);
    put(out, 'platform', d.platform);
  }
  return out;
}

function orderTarget(t: Target, version: EnvelopeVersion): Json {
  const out = orderDescriptor(t, version);
  put(out, 'length', t.length);
  put(out, 'repository', t.repository);
  put(out, 'fromRepository', t.fromRepository);
  put(out, 'url', t.url);
  put(out, 'tag', t.tag);
  put(out, 'references', t.references?.map((r) => orderDescriptor(r, version)));
  return out;
}

function orderEvent(e: Event, version: EnvelopeVersion): Json {
  const out: Json = {};
  put(out, 'id', e.id);
  out.timestamp = e.timestamp;
  put(out, 'action', e.action);
  out.target = orderTarget(e.target ?? {}, version);
  const request: Json = { id: e.request?.id ?? '' };
  put(request, 'addr', e.request?.addr);
  put(request, 'host', e.request?.host);
  request.method = e.request?.method ?? '';
  request.useragent = e.request?.useragent ?? '';
  out.request = request;
  const actor: Json = {};
  put(actor, 'name', e.actor?.name);
  out.actor = actor;
  const source: Json = {};
  put(source, 'addr', e.source?.addr);
  put(source, 'instanceID', e.source?.instanceID);
  out.source = source;
  return out;
}

/**
 * Parses an envelope body (v1 or v2) and checks that each event has the shape of one:
 * an id, a timestamp, a known action and object-valued records. Unknown fields are dropped.
 */
export function decodeEnvelope(body: string | Buffer): Envelope {
  let parsed: unknown;
  try {
    parsed = JSON.parse(typeof body === 'string' ? body : body.toString('utf8'));
  } catch (err) {
    throw new EnvelopeFormatError(`envelope is not valid JSON: ${(err as Error).message}`);
  }
  if (!isObject(parsed)) throw new EnvelopeFormatError('envelope must be a JSON object with an "events" array');
  // `{}` is what Go's encoder writes for no events; any other object needs its array.
  if (parsed.events === undefined && Object.keys(parsed).length === 0) return { events: [] };
  if (!Array.isArray(parsed.events)) {
    throw new EnvelopeFormatError(
      parsed.events === undefined
        ? `not an envelope: expected a JSON object with an "events" array, got one with ${Object.keys(parsed).map((k) => JSON.stringify(k)).join(', ')}`
        : 'envelope field "events" must be an array',
    );
  }
  const raw: unknown[] = parsed.events;
  const events: Event[] = [];
  for (let i = 0; i < raw.length; i++) events.push(decodeEventAt(raw[i], 'events', i));
  return { events };
}

/** Checks one decoded JSON value is an event, every known field of its type; `where` names it in errors. */
export function decodeEvent(value: unknown, where = 'event'): Event {
  return decodeEventAt(value, where, -1);
}

const ACTIONS = new Set<unknown>(EVENT_ACTIONS);
const KINDS = new Set<unknown>(EVENT_KINDS);

type FieldType = 'string' | 'size' | 'strings' | 'object';

/** The type of each record field that is not a string, for error messages. */
const FIELD_TYPES: Record<string, FieldType> = { size: 'size', length: 'size', urls: 'strings', annotations: 'object', platform: 'object' };

const EXPECTED: Record<FieldType, string> = {
  string: 'a string',
  size: 'a whole number of bytes',
  strings: 'a list of strings',
  object: 'an object',
};

// The checks run for every event received, so they are written out field by field, with
// no table walks or closures: a fifth of the receiver's CPU went to them otherwise. Error
// texts, and the names in them (`where`, `index`), are only built for a value that fails.

/** `events[3]`, or `where` alone for an event that is not in a list; then `field`, if any. */
function nameOf(where: string, index: number, field = ''): string {
  return (index < 0 ? where : `${where}[${index}]`) + field;
}

function fieldError(where: string, src: Json, key: string): EnvelopeFormatError {
  const expected = EXPECTED[FIELD_TYPES[key] ?? 'string'];
  return new EnvelopeFormatError(`${where}.${key} must be ${expected}, got ${JSON.stringify(src[key])}`);
}

/**
 * `decodeEvent` for an event named `where[index]` (`where` alone when index < 0) and then
 * `field`, e.g. `batch[3].data`: a name built only for an error, not for every event.
 * Empty record fields are dropped (Go omits them), unknown ones too; a field of the wrong
 * type is an error naming it.
 */
export function decodeEventAt(value: unknown, where: string, index: number, field = ''): Event {
  if (!isObject(value)) throw new EnvelopeFormatError(`${nameOf(where, index, field)} must be an object`);
  const { id, timestamp, action } = value;
  if (typeof id !== 'string' || id === '') throw new EnvelopeFormatError(`${nameOf(where, index, field)}.id must be a non-empty string`);
  if (typeof timestamp !== 'string' || !isRfc3339(timestamp)) {
    throw new EnvelopeFormatError(`${nameOf(where, index, field)}.timestamp must be an RFC 3339 time, got ${JSON.stringify(timestamp)}`);
  }
  if (!ACTIONS.has(action)) {
    throw new EnvelopeFormatError(
      `${nameOf(where, index, field)}.action must be one of ${EVENT_ACTIONS.join(', ')}, got ${JSON.stringify(action)}`,
    );
  }
  const rawTarget = recordOf(value.target, where, index, field, 'target');
  const rawRequest = recordOf(value.request, where, index, field, 'request');
  const request: Json = {};
  let bad = requestFields(rawRequest, request);
  if (bad !== undefined) throw fieldError(`${nameOf(where, index, field)}.request`, rawRequest, bad);
  const target: Json = {};
  bad = targetFields(rawTarget, target);
  if (bad !== undefined) throw fieldError(`${nameOf(where, index, field)}.target`, rawTarget, bad);
  const refs = rawTarget.references;
  if (refs !== undefined && refs !== null) {
    if (!Array.isArray(refs)) throw new EnvelopeFormatError(`${nameOf(where, index, field)}.target.references must be a list`);
    const references: Json[] = [];
    for (let i = 0; i < refs.length; i++) {
      const r: unknown = refs[i];
      if (!isObject(r)) throw new EnvelopeFormatError(`${nameOf(where, index, field)}.target.references[${i}] must be an object`);
      const d: Json = {};
      bad = descriptorFields(r, d);
      if (bad !== undefined) throw fieldError(`${nameOf(where, index, field)}.target.references[${i}]`, r, bad);
      references.push(d);
    }
    target.references = references;
  }
  const rawActor = recordOf(value.actor, where, index, field, 'actor');
  const actor: Json = {};
  if ((bad = actorFields(rawActor, actor)) !== undefined) throw fieldError(`${nameOf(where, index, field)}.actor`, rawActor, bad);
  const rawSource = recordOf(value.source, where, index, field, 'source');
  const source: Json = {};
  if ((bad = sourceFields(rawSource, source)) !== undefined) throw fieldError(`${nameOf(where, index, field)}.source`, rawSource, bad);
  const event: Event = {
    id,
    timestamp,
    action: action as EventAction,
    target: target as Target,
    request: request as unknown as RequestRecord,
    actor,
    source: source as Event['source'],
  };
  if (KINDS.has(value.kind)) event.kind = value.kind as EventKind;
  return event;
}

/** A record of an event: absent (or null) reads as `{}`; anything else must be an object. */
function recordOf(value: unknown, where: string, index: number, field: string, name: string): Json {
  if (value === undefined || value === null) return {};
  if (!isObject(value)) throw new EnvelopeFormatError(`${nameOf(where, index, field)}.${name} must be an object`);
  return value;
}

// Each copies the fields of a record that are set (not absent, null, '' or 0: Go omits
// those) into `out`, and returns the name of the first one set to a value of another type;
// undefined when all is well.

function descriptorFields(src: Json, out: Json): string | undefined {
  let v: unknown;
  if (isSet((v = src.mediaType))) { if (typeof v !== 'string') return 'mediaType'; out.mediaType = v; }
  if (isSet((v = src.size))) { if (!isBytes(v)) return 'size'; out.size = v; }
  if (isSet((v = src.digest))) { if (typeof v !== 'string') return 'digest'; out.digest = v; }
  if (isSet((v = src.urls))) { if (!isTexts(v)) return 'urls'; out.urls = v; }
  if (isSet((v = src.annotations))) { if (!isObject(v)) return 'annotations'; out.annotations = v; }
  if (isSet((v = src.platform))) { if (!isObject(v)) return 'platform'; out.platform = v; }
  if (isSet((v = src.data))) { if (typeof v !== 'string') return 'data'; out.data = v; }
  if (isSet((v = src.artifactType))) { if (typeof v !== 'string') return 'artifactType'; out.artifactType = v; }
  return undefined;
}

/** A target's fields but its references. */
function targetFields(src: Json, out: Json): string | undefined {
  const bad = descriptorFields(src, out);
  if (bad !== undefined) return bad;
  let v: unknown;
  if (isSet((v = src.length))) { if (!isBytes(v)) return 'length'; out.length = v; }
  if (isSet((v = src.repository))) { if (typeof v !== 'string') return 'repository'; out.repository = v; }
  if (isSet((v = src.fromRepository))) { if (typeof v !== 'string') return 'fromRepository'; out.fromRepository = v; }
  if (isSet((v = src.url))) { if (typeof v !== 'string') return 'url'; out.url = v; }
  if (isSet((v = src.tag))) { if (typeof v !== 'string') return 'tag'; out.tag = v; }
  return undefined;
}

/** The request record; its id, method and useragent are always there, as Go writes them. */
function requestFields(src: Json, out: Json): string | undefined {
  let v: unknown;
  if (isSet((v = src.id))) { if (typeof v !== 'string') return 'id'; out.id = v; } else out.id = '';
  if (isSet((v = src.addr))) { if (typeof v !== 'string') return 'addr'; out.addr = v; }
  if (isSet((v = src.host))) { if (typeof v !== 'string') return 'host'; out.host = v; }
  if (isSet((v = src.method))) { if (typeof v !== 'string') return 'method'; out.method = v; } else out.method = '';
  if (isSet((v = src.useragent))) { if (typeof v !== 'string') return 'useragent'; out.useragent = v; } else out.useragent = '';
  return undefined;
}

function actorFields(src: Json, out: Json): string | undefined {
  const v = src.name;
  if (isSet(v)) { if (typeof v !== 'string') return 'name'; out.name = v; }
  return undefined;
}

function sourceFields(src: Json, out: Json): string | undefined {
  let v: unknown;
  if (isSet((v = src.addr))) { if (typeof v !== 'string') return 'addr'; out.addr = v; }
  if (isSet((v = src.instanceID))) { if (typeof v !== 'string') return 'instanceID'; out.instanceID = v; }
  return undefined;
}

function isSet(v: unknown): boolean {
  return v !== undefined && v !== null && v !== '' && v !== 0;
}

function isBytes(v: unknown): boolean {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

function isTexts(v: unknown): boolean {
  if (!Array.isArray(v)) return false;
  for (let i = 0; i < v.length; i++) if (typeof v[i] !== 'string') return false;
  return true;
}

/**
 * RFC 3339 as Go writes it (date, `T`, time, optional fraction, `Z` or an offset), with
 * fields in range: what a pattern for that form and `Date.parse` together accept.
 */
function isRfc3339(s: string): boolean {
  const n = s.length;
  if (n < 20) return false;
  // YYYY-MM-DDTHH:MM:SS, written out: this runs for every event received.
  const month = twoDigits(s, 5);
  const day = twoDigits(s, 8);
  const hour = twoDigits(s, 11);
  const minute = twoDigits(s, 14);
  const second = twoDigits(s, 17);
  if ((twoDigits(s, 0) | twoDigits(s, 2) | month | day | hour | minute | second) < 0) return false;
  if (s.charCodeAt(4) !== 0x2d || s.charCodeAt(7) !== 0x2d || s.charCodeAt(13) !== 0x3a || s.charCodeAt(16) !== 0x3a) return false;
  const t = s.charCodeAt(10);
  if (t !== 0x54 && t !== 0x74) return false;
  let i = 19;
  if (s.charCodeAt(i) === 0x2e) {
    i++;
    const start = i;
    while (i < n && isDigit(s.charCodeAt(i))) i++;
    if (i === start) return false;
  }
  const z = s.charCodeAt(i);
  if (z === 0x5a || z === 0x7a) {
    if (i + 1 !== n) return false;
  } else if (z === 0x2b || z === 0x2d) {
    if (i + 6 !== n || s.charCodeAt(i + 3) !== 0x3a) return false;
    const offsetHour = twoDigits(s, i + 1);
    const offsetMinute = twoDigits(s, i + 4);
    if (offsetHour < 0 || offsetMinute < 0 || offsetHour > 23 || offsetMinute > 59) return false;
  } else return false;
  if (month < 1 || month > 12 || day < 1 || day > 31 || minute > 59 || second > 59) return false;
  // 24:00:00, the end of the day, is the one hour past 23 Date.parse reads (not always).
  if (hour === 24) return !Number.isNaN(Date.parse(s));
  return hour < 24;
}

function isDigit(ch: number): boolean {
  return ch >= 0x30 && ch <= 0x39;
}

/** The number the two digits at `at` write; -1 when either is not a digit. */
function twoDigits(s: string, at: number): number {
  const tens = s.charCodeAt(at) - 0x30;
  const ones = s.charCodeAt(at + 1) - 0x30;
  return tens >= 0 && tens <= 9 && ones >= 0 && ones <= 9 ? tens * 10 + ones : -1;
}


function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
