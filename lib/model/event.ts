import { randomFillSync } from 'node:crypto';

/** Envelope media type sent by Distribution 2.x; our default. */
export const EVENTS_MEDIA_TYPE_V1 = 'application/vnd.docker.distribution.events.v1+json';
/** Envelope media type sent by Distribution 3.x. */
export const EVENTS_MEDIA_TYPE_V2 = 'application/vnd.docker.distribution.events.v2+json';
/** Media type Distribution gives every blob event. */
export const BLOB_MEDIA_TYPE = 'application/octet-stream';

export type EventAction = 'push' | 'pull' | 'mount' | 'delete';
export const EVENT_ACTIONS: readonly EventAction[] = ['push', 'pull', 'mount', 'delete'];

/** What an event is about. */
export type EventKind = 'manifest' | 'blob' | 'tag' | 'repository';
export const EVENT_KINDS: readonly EventKind[] = ['manifest', 'blob', 'tag', 'repository'];

/** The envelope versions we can write: v1 is Distribution 2.x, v2 is Distribution 3.x. */
export type EnvelopeVersion = 'v1' | 'v2';

export interface Platform {
  architecture: string;
  os: string;
  'os.version'?: string;
  'os.features'?: string[];
  variant?: string;
  features?: string[];
}

/** A content descriptor as Distribution writes it in `target` and `references`. */
export interface Descriptor {
  mediaType?: string;
  size?: number;
  digest?: string;
  urls?: string[];
  annotations?: Record<string, string>;
  platform?: Platform;
  /** OCI 1.1 fields; Distribution 3.x writes them when present. */
  data?: string;
  artifactType?: string;
}

/** What an event is about. `length` repeats `size` for old consumers. */
export interface Target extends Descriptor {
  length?: number;
  repository?: string;
  fromRepository?: string;
  url?: string;
  tag?: string;
  references?: Descriptor[];
}

/** The HTTP request that caused the event. */
export interface RequestRecord {
  id: string;
  addr?: string;
  host?: string;
  method: string;
  useragent: string;
}

/** Who caused the event; `{}` when anonymous. */
export interface ActorRecord {
  name?: string;
}

/** Which registry instance produced the event. */
export interface SourceRecord {
  addr?: string;
  instanceID?: string;
}

export interface Event {
  id: string;
  /** RFC 3339 with fractional seconds, kept as text so nanoseconds survive a round trip. */
  timestamp: string;
  action: EventAction;
  target: Target;
  request: RequestRecord;
  actor: ActorRecord;
  source: SourceRecord;
  /**
   * What the event is about, when its producer knew it. Not part of Distribution's wire
   * format and never in its envelope: a manifest delete and a blob delete both carry a
   * bare `{repository, digest}` target, so the Bridge records which one it was, stores
   * keep it, and CloudEvents types carry it (`io.distribution.blob.delete`).
   */
  kind?: EventKind;
}

export interface Envelope {
  events: Event[];
}

/**
 * A new event id. We use UUIDv7 (as Distribution 3.1 does) rather than 2.x's v4: the ids
 * sort by creation time, which keeps store indexes compact and lets a receiver see order
 * in its logs, and every consumer that accepts a v4 uuid accepts a v7 one.
 */
export function newEventId(): string {
  const now = Date.now();
  if (now > idClock.ms) {
    idClock.ms = now;
    // A random start in the lower half, so that the millisecond has room for 2,048 more.
    const at = takeRandom(2);
    idClock.seq = ((idPool[at] << 8) | idPool[at + 1]) & 0x7ff;
  } else if (++idClock.seq > 0xfff) {
    // 4,096 ids in one millisecond (or a clock that went back): the next millisecond is
    // borrowed, as the ids must keep their order.
    idClock.ms++;
    idClock.seq = 0;
  }
  const { ms, seq } = idClock;
  const at = takeRandom(8);
  const r = idPool;
  // unix_ts_ms in 48 bits, version 7 and a 12-bit counter, variant 10 and 62 random bits (RFC 9562).
  const hi = Math.floor(ms / 0x1000000);
  const lo = ms % 0x1000000;
  putHex(0, hi >>> 16);
  putHex(2, (hi >>> 8) & 0xff);
  putHex(4, hi & 0xff);
  putHex(6, lo >>> 16);
  putHex(9, (lo >>> 8) & 0xff);
  putHex(11, lo & 0xff);
  putHex(14, 0x70 | (seq >>> 8));
  putHex(16, seq & 0xff);
  putHex(19, 0x80 | (r[at] & 0x3f));
  putHex(21, r[at + 1]);
  for (let k = 0; k < 6; k++) putHex(24 + 2 * k, r[at + 2 + k]);
  // One flat string: joined with `+`, its twenty parts would make a rope of cons cells
  // that the log and the queue keep as long as the event (about 480 bytes, against 57).
  return idChars.toString('latin1', 0, 36);
}

/** The last event id's millisecond and counter: ids made in this process only go up. */
const idClock = { ms: -1, seq: 0 };
/** The characters of the id being made; the dashes stay where they are. */
const idChars = Buffer.from('00000000-0000-0000-0000-000000000000', 'latin1');
/** The two hex digits of each byte, as character codes: those of byte `b` at `2b` and `2b + 1`. */
const HEX_CODES = Uint8Array.from({ length: 512 }, (_, i) => (i >> 1).toString(16).padStart(2, '0').charCodeAt(i & 1));

/** Writes `byte` as two hex digits at `pos` in `idChars`. */
function putHex(pos: number, byte: number): void {
  idChars[pos] = HEX_CODES[2 * byte];
  idChars[pos + 1] = HEX_CODES[2 * byte + 1];
}

/**
 * Random bytes for ids, drawn from the system 4 KiB at a time: a draw costs a system
 * call, and a pool of 256 bytes (16 ids) made it a cost of every few requests.
 */
const idPool = Buffer.alloc(4096);
let idPoolAt = idPool.length;

/** Where `n` unused random bytes start in `idPool`. */
function takeRandom(n: number): number {
  if (idPoolAt + n > idPool.length) {
    randomFillSync(idPool);
    idPoolAt = 0;
  }
  idPoolAt += n;
  return idPoolAt - n;
}

// Date has millisecond resolution; a monotonic clock anchored to it gives the
// nanosecond digits Go prints, without ever going backwards within a process.
const anchorMs = Date.now();
const anchorHr = process.hrtime();
/** The anchor as whole seconds since the epoch and nanoseconds into that second. */
const anchorSec = Math.floor(anchorMs / 1000);
const anchorNs = (anchorMs % 1000) * 1_000_000;
/** `2006-01-02T15:04:05` of the last second formatted, and which second it was. */
let cachedSec = -1;
let cachedSeconds = '';

/** The current time as Go's RFC3339Nano prints it in UTC (trailing zeros trimmed). */
export function eventTimestamp(): string {
  // Seconds and nanoseconds apart: nanoseconds since the epoch do not fit a double.
  const [s, n] = process.hrtime(anchorHr);
  let sec = anchorSec + s;
  let ns = anchorNs + n;
  if (ns >= 1_000_000_000) {
    sec++;
    ns -= 1_000_000_000;
  }
  if (sec !== cachedSec) {
    cachedSec = sec;
    cachedSeconds = new Date(sec * 1000).toISOString().slice(0, 19);
  }
  return cachedSeconds + fractionOf(ns) + 'Z';
}

/** `.123456789` for nanoseconds into a second, trailing zeros trimmed; '' for none. */
function fractionOf(ns: number): string {
  if (ns === 0) return '';
  let digits = String(ns + 1_000_000_000).slice(1);
  let end = 9;
  while (digits.charCodeAt(end - 1) === 48 /* 0 */) end--;
  if (end < 9) digits = digits.slice(0, end);
  return '.' + digits;
}

/** Formats nanoseconds since the epoch as Go's RFC3339Nano in UTC. */
export function formatTimestamp(nsSinceEpoch: bigint): string {
  const ms = Number(nsSinceEpoch / 1_000_000n);
  const seconds = new Date(ms).toISOString().slice(0, 19);
  let fraction = (nsSinceEpoch % 1_000_000_000n).toString().padStart(9, '0').replace(/0+$/, '');
  if (fraction) fraction = '.' + fraction;
  return `${seconds}${fraction}Z`;
}
