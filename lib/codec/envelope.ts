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

/** Checks one decoded JSON value is an event; `where` names it in errors. */
export function decodeEvent(value: unknown, where = 'event'): Event {
  if (!isObject(value)) throw new EnvelopeFormatError(`${where} must be an object`);
  const { id, timestamp, action } = value;
  if (typeof id !== 'string' || id === '') throw new EnvelopeFormatError(`${where}.id must be a non-empty string`);
  if (typeof timestamp !== 'string' || Number.isNaN(Date.parse(timestamp))) {
    throw new EnvelopeFormatError(`${where}.timestamp must be an RFC 3339 time, got ${JSON.stringify(timestamp)}`);
  }
  if (typeof action !== 'string' || !(EVENT_ACTIONS as readonly string[]).includes(action)) {
    throw new EnvelopeFormatError(
      `${where}.action must be one of ${EVENT_ACTIONS.join(', ')}, got ${JSON.stringify(action)}`,
    );
  }
  for (const record of ['target', 'request', 'actor', 'source'] as const) {
    if (value[record] !== undefined && !isObject(value[record])) {
      throw new EnvelopeFormatError(`${where}.${record} must be an object`);
    }
  }
  const target = (value.target ?? {}) as Json;
  const request = (value.request ?? {}) as Json;
  return {
    id,
    timestamp,
    action: action as Event['action'],
    target: pickTarget(target),
    request: {
      id: String(request.id ?? ''),
      ...(request.addr ? { addr: String(request.addr) } : {}),
      ...(request.host ? { host: String(request.host) } : {}),
      method: String(request.method ?? ''),
      useragent: String(request.useragent ?? ''),
    },
    actor: isObject(value.actor) && value.actor.name ? { name: String(value.actor.name) } : {},
    source: pickKeys((value.source ?? {}) as Json, ['addr', 'instanceID']) as Event['source'],
    ...((EVENT_KINDS as readonly unknown[]).includes(value.kind) ? { kind: value.kind as EventKind } : {}),
  };
}

const DESCRIPTOR_KEYS = ['mediaType', 'size', 'digest', 'urls', 'annotations', 'platform', 'data', 'artifactType'];
const TARGET_KEYS = [...DESCRIPTOR_KEYS, 'length', 'repository', 'fromRepository', 'url', 'tag'];

function pickTarget(t: Json): Target {
  const out = pickKeys(t, TARGET_KEYS) as Target;
  if (Array.isArray(t.references)) out.references = t.references.map((r) => pickKeys(r as Json, DESCRIPTOR_KEYS));
  return out;
}

function pickKeys(src: Json, keys: string[]): Json {
  const out: Json = {};
  for (const k of keys) {
    const v = src[k];
    if (v !== undefined && v !== null && v !== '' && v !== 0) out[k] = v;
  }
  return out;
}

function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
