import {
  EVENT_ACTIONS,
  EVENT_KINDS,
  type EventKind,
  EVENTS_MEDIA_TYPE_V1,
  EVENTS_MEDIA_TYPE_V2,
  type Descriptor,
  type EnvelopeVersion,
  type Envelope,
  type Event,
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

const GO_ESCAPES: Record<string, string> = {
  '<': '\\u003c',
  '>': '\\u003e',
  '&': '\\u0026',
  '\u2028': '\\u2028',
  '\u2029': '\\u2029',
};

function escapeLikeGo(json: string): string {
  return /[<>&\u2028\u2029]/.test(json) ? json.replace(/[<>&\u2028\u2029]/g, (c) => GO_ESCAPES[c]) : json;
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
  const raw = parsed.events;
  return { events: raw.map((e, i) => decodeEvent(e, `events[${i}]`)) };
}

/** RFC 3339 as Go writes it: date, `T`, time, optional fraction, `Z` or an offset. */
const RFC3339 = /^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:[Zz]|[+-]\d{2}:\d{2})$/;

type FieldType = 'string' | 'size' | 'strings' | 'object';
const DESCRIPTOR_FIELDS: Record<string, FieldType> = {
  mediaType: 'string',
  size: 'size',
  digest: 'string',
  urls: 'strings',
  annotations: 'object',
  platform: 'object',
  data: 'string',
  artifactType: 'string',
};
const TARGET_FIELDS: Record<string, FieldType> = {
  ...DESCRIPTOR_FIELDS,
  length: 'size',
  repository: 'string',
  fromRepository: 'string',
  url: 'string',
  tag: 'string',
};
const REQUEST_FIELDS: Record<string, FieldType> = { id: 'string', addr: 'string', host: 'string', method: 'string', useragent: 'string' };
const ACTOR_FIELDS: Record<string, FieldType> = { name: 'string' };
const SOURCE_FIELDS: Record<string, FieldType> = { addr: 'string', instanceID: 'string' };

const EXPECTED: Record<FieldType, string> = {
  string: 'a string',
  size: 'a whole number of bytes',
  strings: 'a list of strings',
  object: 'an object',
};

function fits(value: unknown, type: FieldType): boolean {
  switch (type) {
    case 'string':
      return typeof value === 'string';
    case 'size':
      return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
    case 'strings':
      return Array.isArray(value) && value.every((v) => typeof v === 'string');
    case 'object':
      return isObject(value);
  }
}

/**
 * The fields of one record that it knows, each checked for its type; empty values are
 * dropped (Go omits them), unknown fields are dropped, a field of the wrong type is an
 * error naming it.
 */
function pickFields(src: Json, fields: Record<string, FieldType>, where: string): Json {
  const out: Json = {};
  for (const [key, type] of Object.entries(fields)) {
    const v = src[key];
    if (v === undefined || v === null || v === '' || v === 0) continue;
    if (!fits(v, type)) throw new EnvelopeFormatError(`${where}.${key} must be ${EXPECTED[type]}, got ${JSON.stringify(v)}`);
    out[key] = v;
  }
  return out;
}

function record(value: Json, name: string, where: string): Json {
  const v = value[name];
  if (v === undefined || v === null) return {};
  if (!isObject(v)) throw new EnvelopeFormatError(`${where}.${name} must be an object`);
  return v;
}

/** Checks one decoded JSON value is an event, every known field of its type; `where` names it in errors. */
export function decodeEvent(value: unknown, where = 'event'): Event {
  if (!isObject(value)) throw new EnvelopeFormatError(`${where} must be an object`);
  const { id, timestamp, action } = value;
  if (typeof id !== 'string' || id === '') throw new EnvelopeFormatError(`${where}.id must be a non-empty string`);
  if (typeof timestamp !== 'string' || !RFC3339.test(timestamp) || Number.isNaN(Date.parse(timestamp))) {
    throw new EnvelopeFormatError(`${where}.timestamp must be an RFC 3339 time, got ${JSON.stringify(timestamp)}`);
  }
  if (typeof action !== 'string' || !(EVENT_ACTIONS as readonly string[]).includes(action)) {
    throw new EnvelopeFormatError(
      `${where}.action must be one of ${EVENT_ACTIONS.join(', ')}, got ${JSON.stringify(action)}`,
    );
  }
  const rawTarget = record(value, 'target', where);
  const request = pickFields(record(value, 'request', where), REQUEST_FIELDS, `${where}.request`);
  const target = pickFields(rawTarget, TARGET_FIELDS, `${where}.target`) as Target;
  if (rawTarget.references !== undefined && rawTarget.references !== null) {
    if (!Array.isArray(rawTarget.references)) throw new EnvelopeFormatError(`${where}.target.references must be a list`);
    target.references = rawTarget.references.map((r, i) => {
      if (!isObject(r)) throw new EnvelopeFormatError(`${where}.target.references[${i}] must be an object`);
      return pickFields(r, DESCRIPTOR_FIELDS, `${where}.target.references[${i}]`);
    });
  }
  return {
    id,
    timestamp,
    action: action as Event['action'],
    target,
    request: {
      id: (request.id as string) ?? '',
      ...(request.addr ? { addr: request.addr as string } : {}),
      ...(request.host ? { host: request.host as string } : {}),
      method: (request.method as string) ?? '',
      useragent: (request.useragent as string) ?? '',
    },
    actor: pickFields(record(value, 'actor', where), ACTOR_FIELDS, `${where}.actor`),
    source: pickFields(record(value, 'source', where), SOURCE_FIELDS, `${where}.source`) as Event['source'],
    ...((EVENT_KINDS as readonly unknown[]).includes(value.kind) ? { kind: value.kind as EventKind } : {}),
  };
}


function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
