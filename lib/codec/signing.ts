import { DEFAULTS } from '../config/defaults';
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import type { Event } from '../model/event';

/** Header names of the Standard Webhooks scheme. */
export const WEBHOOK_ID_HEADER = 'webhook-id';
export const WEBHOOK_TIMESTAMP_HEADER = 'webhook-timestamp';
export const WEBHOOK_SIGNATURE_HEADER = 'webhook-signature';

/** Prefix of a secret whose remainder is the base64 key. */
export const SECRET_PREFIX = 'whsec_';

export interface VerifyOptions {
  /**
   * How far, in seconds, `webhook-timestamp` may lie from now in either direction.
   * @default 300
   */
  toleranceSec?: number;
  /**
   * The current time in unix seconds; tests and replays set it.
   * @default Math.floor(Date.now() / 1000)
   */
  nowSec?: number;
}

/** Thrown by `verifyWebhook` when a delivery cannot be trusted; the message says why. */
export class WebhookVerificationError extends Error {
  override readonly name = 'WebhookVerificationError';
  constructor(message: string) {
    super(message);
  }
}

/** Thrown for a secret that is empty or whose `whsec_` key is not base64. */
export class WebhookSecretError extends Error {
  override readonly name = 'WebhookSecretError';
  constructor(message: string) {
    super(message);
  }
}

/** Headers as Node or a plain object gives them; names are matched case-insensitively. */
export type HeaderBag = Record<string, string | string[] | undefined>;

const keyCache = new Map<string, Buffer>();

/**
 * The HMAC key of a secret: `whsec_<base64>` decodes to its bytes, anything else is
 * taken as its UTF-8 bytes.
 */
export function secretKey(secret: string): Buffer {
  const cached = keyCache.get(secret);
  if (cached) return cached;
  if (typeof secret !== 'string' || secret === '') throw new WebhookSecretError('webhook secret must be a non-empty string');
  let key: Buffer;
  if (secret.startsWith(SECRET_PREFIX)) {
    const b64 = secret.slice(SECRET_PREFIX.length);
    if (!/^[A-Za-z0-9+/]+={0,2}$/.test(b64)) {
      throw new WebhookSecretError(`webhook secret after "${SECRET_PREFIX}" must be base64, got ${b64.length} characters that are not`);
    }
    key = Buffer.from(b64, 'base64');
  } else {
    key = Buffer.from(secret, 'utf8');
  }
  // Secrets are few and long-lived; caching spares a base64 decode per delivery.
  if (keyCache.size < 1000) keyCache.set(secret, key);
  return key;
}

function signature(key: Buffer, id: string, timestampSec: number, body: string | Buffer): Buffer {
  const hmac = createHmac('sha256', key);
  hmac.update(`${id}.${timestampSec}.`);
  hmac.update(body);
  return hmac.digest();
}

/**
 * The three Standard Webhooks headers for a delivery: `webhook-signature` carries one
 * `v1,<base64>` signature per secret, so a receiver holding any of them accepts it.
 */
export function signWebhook(
  secrets: readonly string[],
  id: string,
  timestampSec: number,
  body: string | Buffer,
): Record<string, string> {
  if (secrets.length === 0) throw new WebhookSecretError('signWebhook needs at least one secret');
  if (!Number.isInteger(timestampSec)) {
    throw new WebhookSecretError(`webhook timestamp must be whole unix seconds, got ${timestampSec}`);
  }
  const sigs = secrets.map((s) => 'v1,' + signature(secretKey(s), id, timestampSec, body).toString('base64'));
  return {
    [WEBHOOK_ID_HEADER]: id,
    [WEBHOOK_TIMESTAMP_HEADER]: String(timestampSec),
    [WEBHOOK_SIGNATURE_HEADER]: sigs.join(' '),
  };
}

/**
 * The `webhook-id` of a delivery: the event id for one event; for several, a digest of
 * their ids. Either way it is the same on every retry, so receivers can deduplicate.
 */
export function deliveryId(events: readonly Event[]): string {
  if (events.length === 1) return events[0].id;
  const h = createHash('sha256');
  for (const e of events) h.update(e.id).update('\n');
  return 'msg_' + h.digest('hex').slice(0, 32);
}

/** A signer for HttpSink's `sign` option: signs each body with every secret, stamped now. */
export function webhookSigner(secrets: readonly string[]): (body: string, events: readonly Event[]) => Record<string, string> {
  secrets.forEach(secretKey); // fail on a bad secret when configured, not on first delivery
  return (body, events) => signWebhook(secrets, deliveryId(events), Math.floor(Date.now() / 1000), body);
}

function header(headers: HeaderBag, name: string): string | undefined {
  let value = headers[name];
  if (value === undefined) {
    const wanted = name.toLowerCase();
    for (const k of Object.keys(headers)) if (k.toLowerCase() === wanted) value = headers[k];
  }
  return Array.isArray(value) ? value.join(' ') : value;
}

/**
 * Checks a delivery's Standard Webhooks headers against the raw body. Accepts when any
 * `v1` signature matches any secret and the timestamp is within tolerance; otherwise
 * throws `WebhookVerificationError`. Returns the verified id and timestamp.
 */
export function verifyWebhook(
  secrets: readonly string[],
  headers: HeaderBag,
  body: string | Buffer,
  options: VerifyOptions = {},
): { id: string; timestampSec: number } {
  const toleranceSec = options.toleranceSec ?? DEFAULTS.receiver.toleranceSec;
  const nowSec = options.nowSec ?? Math.floor(Date.now() / 1000);
  if (secrets.length === 0) throw new WebhookSecretError('verifyWebhook needs at least one secret');

  const id = header(headers, WEBHOOK_ID_HEADER);
  const ts = header(headers, WEBHOOK_TIMESTAMP_HEADER);
  const sigs = header(headers, WEBHOOK_SIGNATURE_HEADER);
  for (const [name, value] of [
    [WEBHOOK_ID_HEADER, id],
    [WEBHOOK_TIMESTAMP_HEADER, ts],
    [WEBHOOK_SIGNATURE_HEADER, sigs],
  ] as const) {
    if (!value) throw new WebhookVerificationError(`missing ${name} header`);
  }
  if (!/^\d{1,15}$/.test(ts!)) {
    throw new WebhookVerificationError(`${WEBHOOK_TIMESTAMP_HEADER} must be unix seconds, got ${JSON.stringify(ts)}`);
  }
  const timestampSec = Number(ts);
  if (timestampSec < nowSec - toleranceSec) {
    throw new WebhookVerificationError(
      `${WEBHOOK_TIMESTAMP_HEADER} ${timestampSec} is too old: ${nowSec - timestampSec}s before now, tolerance ${toleranceSec}s`,
    );
  }
  if (timestampSec > nowSec + toleranceSec) {
    throw new WebhookVerificationError(
      `${WEBHOOK_TIMESTAMP_HEADER} ${timestampSec} is too new: ${timestampSec - nowSec}s after now, tolerance ${toleranceSec}s`,
    );
  }

  const offered: Buffer[] = [];
  for (const part of sigs!.split(' ')) {
    const comma = part.indexOf(',');
    // Other versions (v1a, future schemes) are skipped, not rejected, as the scheme asks.
    if (comma < 0 || part.slice(0, comma) !== 'v1') continue;
    offered.push(Buffer.from(part.slice(comma + 1), 'base64'));
  }
  if (offered.length === 0) {
    throw new WebhookVerificationError(`${WEBHOOK_SIGNATURE_HEADER} has no v1 signature`);
  }
  for (const secret of secrets) {
    const expected = signature(secretKey(secret), id!, timestampSec, body);
    for (const sig of offered) {
      if (sig.length === expected.length && timingSafeEqual(sig, expected)) return { id: id!, timestampSec };
    }
  }
  throw new WebhookVerificationError(
    `no ${WEBHOOK_SIGNATURE_HEADER} matches: ${offered.length} signature(s) checked against ${secrets.length} secret(s)`,
  );
}
