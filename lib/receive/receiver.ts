import { createHash, timingSafeEqual } from 'node:crypto';
import express, { type NextFunction, type Request, type Response } from 'express';
import { EVENTS_MEDIA_TYPE_V1, EVENTS_MEDIA_TYPE_V2, type Event } from '../model/event';
import { decodeEnvelope, EnvelopeFormatError } from '../codec/envelope';
import {
  CLOUDEVENTS_BATCH_MEDIA_TYPE,
  CLOUDEVENTS_JSON_MEDIA_TYPE,
  CloudEventFormatError,
  decodeBatch,
  decodeBinary,
  decodeStructured,
} from '../codec/cloudevents';
import { eventType, type KnownEventType } from '../model/event-kind';
import { DEFAULTS } from '../config/defaults';
import { MemoryDeduplicator, type Deduplicator } from './deduplicator';
import { secretKey, verifyWebhook, WebhookVerificationError } from '../codec/signing';

/** Handles one event; the delivery is acknowledged only after the returned promise resolves. */
export type EventHandler = (event: Event) => unknown;

/** Handlers by `<kind>.<action>`, e.g. `'manifest.push'`, `'blob.mount'`, `'tag.delete'`. */
export type EventHandlers = { [K in KnownEventType]?: EventHandler };

export interface ReceiverOptions {
  /**
   * Expected bearer token: requests must carry `Authorization: Bearer <token>`, as the
   * `headers` of a Distribution endpoint would send it. Unset means no token check.
   * @default undefined
   */
  token?: string;
  /**
   * Standard Webhooks secrets (`whsec_<base64>` or raw strings); when set, every request
   * must carry a `webhook-signature` that one of them verifies. Several allow rotation.
   * @default undefined (no signature check)
   */
  secrets?: readonly string[];
  /**
   * How far `webhook-timestamp` may be from now, in seconds.
   * @default 300
   */
  toleranceSec?: number;
  /**
   * Remembers event ids to drop redeliveries. A duplicate is acknowledged, not handled.
   * The receiver does not close a deduplicator it was given.
   * @default new MemoryDeduplicator({ windowMs: 10 * 60 * 1000 })
   */
  deduplicator?: Deduplicator;
  /**
   * Largest accepted body in bytes; bigger ones are answered 413.
   * @default 1048576 (1 MiB)
   */
  limit?: number;
  /**
   * Called for every new event, before its `on` handler.
   * @default undefined
   */
  onEvent?: EventHandler;
  /**
   * Called for new events of one kind and action.
   * @default {}
   */
  on?: EventHandlers;
  /**
   * Told about handler failures (answered 500) and internal errors, for logging.
   * @default undefined
   */
  onError?: (error: unknown, event?: Event) => void;
}

/** Answered with the status it carries and `{"error": message}`. */
export class ReceiverError extends Error {
  override readonly name = 'ReceiverError';
  constructor(
    readonly status: number,
    message: string,
    /** Sent as `Retry-After` (seconds) with a status the sender should retry. */
    readonly retryAfterSec?: number,
  ) {
    super(message);
  }
}

/** Thrown by `createReceiver` for an option it cannot use. */
export class ReceiverOptionsError extends Error {
  override readonly name = 'ReceiverOptionsError';
  constructor(message: string) {
    super(message);
  }
}

/** Thrown when a handler fails; the delivery is answered 500 and its event stays unseen. */
export class EventHandlerError extends Error {
  override readonly name = 'EventHandlerError';
  constructor(
    readonly event: Event,
    override readonly cause: unknown,
  ) {
    super(`handler failed for event ${event.id} (${eventType(event)}): ${(cause as Error)?.message ?? String(cause)}`);
  }
}

type Format = 'envelope' | 'structured' | 'batch' | 'binary';

const ENVELOPE_TYPES = new Set([EVENTS_MEDIA_TYPE_V1, EVENTS_MEDIA_TYPE_V2, 'application/json']);

function mediaType(req: Request): string {
  return (req.headers['content-type'] ?? '').split(';')[0].trim().toLowerCase();
}

/** Which encoding a request uses, from its headers; 415 when none we read. */
function formatOf(req: Request): Format {
  const type = mediaType(req);
  const cloudEventType = type === CLOUDEVENTS_JSON_MEDIA_TYPE || type === CLOUDEVENTS_BATCH_MEDIA_TYPE;
  // A ce-specversion header marks binary mode, whose body is the bare event data.
  if (req.headers['ce-specversion'] !== undefined && !cloudEventType) {
    if (type === '' || type === 'application/json' || type.endsWith('+json')) return 'binary';
    throw new ReceiverError(415, `binary-mode CloudEvent data must be application/json, got content-type "${type}"`);
  }
  if (type === CLOUDEVENTS_JSON_MEDIA_TYPE) return 'structured';
  if (type === CLOUDEVENTS_BATCH_MEDIA_TYPE) return 'batch';
  if (ENVELOPE_TYPES.has(type)) return 'envelope';
  throw new ReceiverError(
    415,
    `content-type must be one of ${[...ENVELOPE_TYPES, CLOUDEVENTS_JSON_MEDIA_TYPE, CLOUDEVENTS_BATCH_MEDIA_TYPE].join(', ')}; got ${type ? `"${type}"` : 'none'}`,
  );
}

function decode(format: Format, req: Request, body: Buffer): Event[] {
  try {
    switch (format) {
      case 'envelope':
        return decodeEnvelope(body).events;
      case 'structured':
        return [decodeStructured(body)];
      case 'batch':
        return decodeBatch(body);
      case 'binary':
        return [decodeBinary(req.headers, body)];
    }
  } catch (err) {
    if (err instanceof EnvelopeFormatError || err instanceof CloudEventFormatError) {
      throw new ReceiverError(400, err.message);
    }
    throw err;
  }
}

const sha256 = (s: string): Buffer => createHash('sha256').update(s, 'utf8').digest();

/** Compares bearer tokens in constant time; hashing first hides the expected length too. */
function checkToken(expected: Buffer, req: Request): void {
  const auth = req.headers.authorization;
  if (!auth) throw new ReceiverError(401, 'missing Authorization header: expected "Bearer <token>"');
  const match = /^Bearer\s+(.+)$/i.exec(auth.trim());
  if (!match) throw new ReceiverError(401, 'Authorization header must use the Bearer scheme');
  if (!timingSafeEqual(sha256(match[1]), expected)) throw new ReceiverError(401, 'bearer token is not the expected one');
}

/**
 * An Express router that accepts webhook deliveries with `POST /`: Distribution event
 * envelopes (v1, v2 or plain JSON) and CloudEvents (structured, binary and batch). It
 * checks the token and signatures, drops events already seen, calls the handlers in
 * order and answers `200 {"accepted": n, "duplicates": m}` once they have all resolved.
 * A handler that throws makes the answer 500, and the events not yet handled are
 * forgotten so the sender's retry is processed. Mount it before any body parser: it
 * reads the raw bytes, since signatures are over them.
 */
export function createReceiver(options: ReceiverOptions = {}): express.Router {
  const limit = options.limit ?? DEFAULTS.receiver.limit;
  const toleranceSec = options.toleranceSec ?? DEFAULTS.receiver.toleranceSec;
  if (!Number.isInteger(limit) || limit <= 0) {
    throw new ReceiverOptionsError(`receiver limit must be a positive whole number of bytes, got ${limit}`);
  }
  if (options.token !== undefined && options.token === '') throw new ReceiverOptionsError('receiver token must not be empty');
  const secrets = options.secrets ?? [];
  for (const [i, secret] of secrets.entries()) {
    try {
      secretKey(secret);
    } catch (err) {
      throw new ReceiverOptionsError(`receiver secrets[${i}] is unusable: ${(err as Error).message}`);
    }
  }
  const expectedToken = options.token !== undefined ? sha256(options.token) : undefined;
  const dedupe = options.deduplicator ?? new MemoryDeduplicator({ windowMs: DEFAULTS.deduplicator.windowMs });
  const on = options.on ?? {};

  const router = express.Router();

  // Checks that need no body come first, so an unauthenticated sender cannot make us read one.
  router.post('/', (req: Request, _res: Response, next: NextFunction) => {
    if (expectedToken) checkToken(expectedToken, req);
    (req as Request & { webhookFormat?: Format }).webhookFormat = formatOf(req);
    next();
  });
  router.post('/', express.raw({ type: () => true, limit }));
  router.post('/', async (req: Request, res: Response) => {
    if (!Buffer.isBuffer(req.body)) {
      // Something before us consumed the stream; signatures can no longer be checked.
      throw new ReceiverError(500, 'request body was already parsed by another middleware; mount the receiver before body parsers');
    }
    const body = req.body;
    if (secrets.length > 0) {
      try {
        verifyWebhook(secrets, req.headers, body, { toleranceSec });
      } catch (err) {
        if (err instanceof WebhookVerificationError) throw new ReceiverError(401, err.message);
        throw err;
      }
    }
    const events = decode((req as Request & { webhookFormat: Format }).webhookFormat, req, body);

    const fresh: Event[] = [];
    const claimed = new Set<string>();
    let busy: Event | undefined;
    try {
      for (const event of events) {
        // An id twice in one delivery is a duplicate of the first, not an event in progress.
        if (claimed.has(event.id)) continue;
        const sighting = await dedupe.claim(event.id);
        if (sighting === 'new') {
          fresh.push(event);
          claimed.add(event.id);
        } else if (sighting === 'handling') busy ??= event;
      }
    } catch (err) {
      await Promise.allSettled(fresh.map((e) => dedupe.forget(e.id)));
      throw err;
    }
    if (busy) {
      // A retry that overtook its first delivery: answering "duplicate" would lose the
      // event should that first handling fail, so the sender is asked to come back.
      await Promise.allSettled(fresh.map((e) => dedupe.forget(e.id)));
      throw new ReceiverError(503, `event ${busy.id} is still being handled by an earlier delivery; retry later`, 1);
    }

    let handled = 0;
    try {
      for (const event of fresh) {
        try {
          await options.onEvent?.(event);
          await on[eventType(event) as KnownEventType]?.(event);
        } catch (err) {
          throw new EventHandlerError(event, err);
        }
        await dedupe.complete(event.id);
        handled++;
      }
    } catch (err) {
      // Events handled before the failure stay seen: a retry of the same delivery then
      // resumes at the one that failed instead of repeating side effects.
      await Promise.all(fresh.slice(handled).map((e) => dedupe.forget(e.id)));
      throw err;
    }
    res.status(200).json({ accepted: fresh.length, duplicates: events.length - fresh.length });
  });
  router.all('/', (_req: Request, res: Response) => {
    res.status(405).set('Allow', 'POST').json({ error: 'method not allowed: webhooks are delivered with POST' });
  });

  router.use((err: unknown, _req: Request, res: Response, _next: NextFunction) => {
    const { status, message } = describeError(err, limit);
    if (status >= 500) options.onError?.(err, err instanceof EventHandlerError ? err.event : undefined);
    if (res.headersSent) return;
    if (err instanceof ReceiverError && err.retryAfterSec !== undefined) res.set('Retry-After', String(err.retryAfterSec));
    res.status(status).json({ error: message });
  });
  return router;
}

function describeError(err: unknown, limit: number): { status: number; message: string } {
  if (err instanceof ReceiverError) return { status: err.status, message: err.message };
  if (err instanceof EventHandlerError) return { status: 500, message: err.message };
  const e = err as { type?: string; status?: number; message?: string };
  // body-parser's errors carry a `type`; turn the common ones into messages that say what.
  if (e?.type === 'entity.too.large') return { status: 413, message: `request body is larger than the limit of ${limit} bytes` };
  if (e?.type === 'encoding.unsupported' || e?.type === 'charset.unsupported') {
    return { status: 415, message: e.message ?? 'unsupported content encoding' };
  }
  if (e?.type === 'request.aborted') return { status: 400, message: 'request was aborted before its body was read' };
  if (typeof e?.status === 'number' && e.status >= 400 && e.status < 500) {
    return { status: e.status, message: e.message ?? 'bad request' };
  }
  return { status: 500, message: 'internal error while receiving the webhook' };
}
