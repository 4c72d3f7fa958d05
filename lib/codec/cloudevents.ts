import { EVENT_ACTIONS, EVENT_KINDS, type Event, type EventKind } from '../model/event';
import { eventType } from '../model/event-kind';
import { decodeEventAt, encodeEvent, EnvelopeFormatError } from './envelope';

/** Structured-mode content type: one event, attributes and data in one JSON object. */
export const CLOUDEVENTS_JSON_MEDIA_TYPE = 'application/cloudevents+json';
/** Batch-mode content type: a JSON array of structured events. */
export const CLOUDEVENTS_BATCH_MEDIA_TYPE = 'application/cloudevents-batch+json';
/** Prefix of every CloudEvents `type` we write, e.g. `io.distribution.manifest.push`. */
export const CLOUDEVENT_TYPE_PREFIX = 'io.distribution.';

/** The context attributes of a CloudEvents 1.0 event; extension attributes are allowed. */
export interface CloudEventAttributes {
  specversion: '1.0';
  id: string;
  source: string;
  type: string;
  subject?: string;
  time?: string;
  datacontenttype?: string;
  dataschema?: string;
  [extension: string]: unknown;
}

/** A CloudEvents 1.0 event in its JSON form. */
export interface CloudEvent<T = unknown> extends CloudEventAttributes {
  data?: T;
}

/** Headers and body ready to POST. */
export interface EncodedCloudEvents {
  headers: Record<string, string>;
  body: string;
}

/** Thrown for a CloudEvent that is malformed or does not carry a registry event. */
export class CloudEventFormatError extends Error {
  override readonly name = 'CloudEventFormatError';
  constructor(message: string) {
    super(message);
  }
}

/** The CloudEvents `type` of an event: `io.distribution.<kind>.<action>`. */
export function cloudEventType(event: Pick<Event, 'target' | 'action'>): string {
  return CLOUDEVENT_TYPE_PREFIX + eventType(event);
}

/** `/registry/<source.addr>` (or the instance id when the address is unknown). */
function cloudEventSource(event: Event): string {
  const who = event.source?.addr || event.source?.instanceID || 'unknown';
  return '/registry/' + encodeURI(who);
}

/** `repository`, `repository:tag` or `repository@digest` (tag wins, as a person reads it). */
function cloudEventSubject(event: Event): string | undefined {
  const t = event.target ?? {};
  if (!t.repository) return undefined;
  if (t.tag) return `${t.repository}:${t.tag}`;
  if (t.digest) return `${t.repository}@${t.digest}`;
  return t.repository;
}

/** The CloudEvents attributes of an event, without `data`. */
function attributes(event: Event): CloudEventAttributes {
  const subject = cloudEventSubject(event);
  return {
    specversion: '1.0',
    id: event.id,
    source: cloudEventSource(event),
    type: cloudEventType(event),
    ...(subject ? { subject } : {}),
    time: event.timestamp,
    datacontenttype: 'application/json',
  };
}

/** Our event as a CloudEvent whose `data` is the whole Distribution event. */
export function toCloudEvent(event: Event): CloudEvent<Event> {
  const { kind: _kind, ...data } = event;
  return { ...attributes(event), data };
}

/**
 * The registry event a CloudEvent carries. `data` must be a Distribution event (an
 * object or its JSON text); a missing `id`, `timestamp` or `action` in it is taken from
 * the CloudEvent's `id`, `time` and `type`.
 */
export function fromCloudEvent(ce: unknown, where = 'cloudevent'): Event {
  return checkCloudEvent(ce, where, -1);
}

/** `batch[3]`, or `where` alone for a CloudEvent that is not in a list. */
function nameOf(where: string, index: number): string {
  return index < 0 ? where : `${where}[${index}]`;
}

/**
 * `fromCloudEvent` for a CloudEvent named as `nameOf` says. It runs for every event of a
 * batch received, so names are only built for an error.
 */
function checkCloudEvent(ce: unknown, where: string, index: number): Event {
  if (typeof ce !== 'object' || ce === null || Array.isArray(ce)) {
    throw new CloudEventFormatError(`${nameOf(where, index)} must be a JSON object`);
  }
  const c = ce as Record<string, unknown>;
  if (c.specversion !== '1.0') {
    throw new CloudEventFormatError(`${nameOf(where, index)}.specversion must be "1.0", got ${JSON.stringify(c.specversion)}`);
  }
  requireText(c, 'id', where, index);
  requireText(c, 'source', where, index);
  requireText(c, 'type', where, index);
  const type = c.type as string;
  if (!type.startsWith(CLOUDEVENT_TYPE_PREFIX)) {
    throw new CloudEventFormatError(
      `${nameOf(where, index)}.type must start with "${CLOUDEVENT_TYPE_PREFIX}", got ${JSON.stringify(type)}`,
    );
  }
  const [typeKind, typeAction] = KNOWN_TYPES.get(type) ?? typeParts(type);
  if (c.datacontenttype !== undefined && typeof c.datacontenttype === 'string' && !isJsonType(c.datacontenttype)) {
    throw new CloudEventFormatError(
      `${nameOf(where, index)}.datacontenttype must be application/json, got ${JSON.stringify(c.datacontenttype)}`,
    );
  }
  let data = c.data;
  if (data === undefined && typeof c.data_base64 === 'string') data = Buffer.from(c.data_base64, 'base64').toString('utf8');
  if (typeof data === 'string') {
    try {
      data = JSON.parse(data);
    } catch (err) {
      throw new CloudEventFormatError(`${nameOf(where, index)}.data is not valid JSON: ${(err as Error).message}`);
    }
  }
  if (typeof data !== 'object' || data === null || Array.isArray(data)) {
    throw new CloudEventFormatError(`${nameOf(where, index)}.data must be a Distribution event object`);
  }
  const d = data as Record<string, unknown>;
  const knownAction = ACTIONS.has(typeAction);
  if (knownAction && d.action !== undefined && d.action !== typeAction) {
    throw new CloudEventFormatError(
      `${nameOf(where, index)}.type says the action is ${JSON.stringify(typeAction)} but data.action is ${JSON.stringify(d.action)}`,
    );
  }
  // The fields decodeEvent reads, named one by one: a spread of `d` costs more than the
  // decoding itself, and decodeEvent drops the rest anyway.
  const filled = {
    id: d.id ?? c.id,
    timestamp: d.timestamp ?? c.time,
    action: d.action ?? (knownAction ? typeAction : undefined),
    target: d.target,
    request: d.request,
    actor: d.actor,
    source: d.source,
    kind: KINDS.has(typeKind) ? (typeKind as EventKind) : undefined,
  };
  try {
    return decodeEventAt(filled, where, index, '.data');
  } catch (err) {
    if (err instanceof EnvelopeFormatError) throw new CloudEventFormatError(err.message);
    throw err;
  }
}

const ACTIONS = new Set<unknown>(EVENT_ACTIONS);
const KINDS = new Set<unknown>(EVENT_KINDS);

/**
 * The kind and action of a type `io.distribution.<kind>.<action>` (the kind tells a blob
 * delete from a manifest delete): its first two dot-separated parts after the prefix.
 */
function typeParts(type: string): readonly [string, string | undefined] {
  const kindEnd = type.indexOf('.', CLOUDEVENT_TYPE_PREFIX.length);
  if (kindEnd < 0) return [type.slice(CLOUDEVENT_TYPE_PREFIX.length), undefined];
  const actionEnd = type.indexOf('.', kindEnd + 1);
  return [type.slice(CLOUDEVENT_TYPE_PREFIX.length, kindEnd), type.slice(kindEnd + 1, actionEnd < 0 ? undefined : actionEnd)];
}

/** The parts of every type this package writes, split once. */
const KNOWN_TYPES = new Map(
  EVENT_KINDS.flatMap((kind) => EVENT_ACTIONS.map((action) => `${CLOUDEVENT_TYPE_PREFIX}${kind}.${action}`)).map((type) => [type, typeParts(type)]),
);

function requireText(c: Record<string, unknown>, attr: string, where: string, index: number): void {
  const v = c[attr];
  if (typeof v !== 'string' || v === '') {
    throw new CloudEventFormatError(`${nameOf(where, index)}.${attr} must be a non-empty string, got ${JSON.stringify(v)}`);
  }
}

function isJsonType(contentType: string): boolean {
  if (contentType === 'application/json') return true;
  const essence = contentType.split(';')[0].trim().toLowerCase();
  return essence === 'application/json' || essence.endsWith('+json') || essence === 'text/json';
}

/** One structured-mode CloudEvent as JSON text; `data` keeps Distribution's key order. */
function structuredJson(event: Event): string {
  const attrs = JSON.stringify(attributes(event));
  return `${attrs.slice(0, -1)},"data":${encodeEvent(event, { indent: false })}}`;
}

/** Structured mode: one event, `Content-Type: application/cloudevents+json`. */
export function encodeStructured(event: Event): EncodedCloudEvents {
  return {
    headers: { 'content-type': `${CLOUDEVENTS_JSON_MEDIA_TYPE}; charset=utf-8` },
    body: structuredJson(event),
  };
}

/** Batch mode: many events in one JSON array, `Content-Type: application/cloudevents-batch+json`. */
export function encodeBatch(events: readonly Event[]): EncodedCloudEvents {
  return {
    headers: { 'content-type': `${CLOUDEVENTS_BATCH_MEDIA_TYPE}; charset=utf-8` },
    body: `[${events.map(structuredJson).join(',')}]`,
  };
}

/** Binary mode: attributes as `ce-*` headers, the Distribution event as the JSON body. */
export function encodeBinary(event: Event): EncodedCloudEvents {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  for (const [k, v] of Object.entries(attributes(event))) {
    if (k === 'datacontenttype' || v === undefined) continue;
    headers[`ce-${k}`] = percentEncode(String(v));
  }
  return { headers, body: encodeEvent(event, { indent: false }) };
}

/** Decodes a structured-mode body into our event. */
export function decodeStructured(body: string | Buffer): Event {
  return fromCloudEvent(parseJson(body, 'structured CloudEvent'));
}

/** Decodes a batch-mode body (a JSON array of CloudEvents) into our events. */
export function decodeBatch(body: string | Buffer): Event[] {
  const parsed = parseJson(body, 'CloudEvents batch');
  if (!Array.isArray(parsed)) throw new CloudEventFormatError('CloudEvents batch must be a JSON array');
  const events: Event[] = [];
  for (let i = 0; i < parsed.length; i++) events.push(checkCloudEvent(parsed[i], 'batch', i));
  return events;
}

/**
 * Decodes a binary-mode delivery: `ce-*` headers (names in any case) and the body as data.
 * `content-type` becomes `datacontenttype`.
 */
export function decodeBinary(headers: Record<string, string | string[] | undefined>, body: string | Buffer): Event {
  const ce: Record<string, unknown> = {};
  for (const [name, raw] of Object.entries(headers)) {
    const lower = name.toLowerCase();
    if (raw === undefined) continue;
    const value = Array.isArray(raw) ? raw.join(',') : raw;
    if (lower.startsWith('ce-')) ce[lower.slice(3)] = percentDecode(value);
    else if (lower === 'content-type') ce.datacontenttype = value;
  }
  ce.data = parseJson(body, 'binary-mode CloudEvent data');
  return fromCloudEvent(ce);
}

function parseJson(body: string | Buffer, what: string): unknown {
  try {
    return JSON.parse(typeof body === 'string' ? body : body.toString('utf8'));
  } catch (err) {
    throw new CloudEventFormatError(`${what} is not valid JSON: ${(err as Error).message}`);
  }
}

// The HTTP binding asks for space, '"', '%' and anything outside printable ASCII to be
// percent-encoded in header values (as UTF-8 bytes).
function percentEncode(value: string): string {
  if (/^[\x21\x23\x24\x26-\x7e]*$/.test(value)) return value;
  let out = '';
  for (const byte of Buffer.from(value, 'utf8')) {
    const printable = byte >= 0x21 && byte <= 0x7e && byte !== 0x22 && byte !== 0x25;
    out += printable ? String.fromCharCode(byte) : '%' + byte.toString(16).toUpperCase().padStart(2, '0');
  }
  return out;
}

function percentDecode(value: string): string {
  if (!value.includes('%')) return value;
  try {
    return decodeURIComponent(value);
  } catch {
    throw new CloudEventFormatError(`CloudEvents header value ${JSON.stringify(value)} has a malformed percent-encoding`);
  }
}
