import os from 'node:os';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import type { ActorRecord, SourceRecord } from '../model/event';
import type { Sink } from '../deliver/sink';
import { Bridge, urlBuilderFor } from './bridge';
import { HeldEvents } from './held-events';
import { defaultActor, requestBaseUrl, requestRecord } from './request-record';

export interface EmitOptions {
  /** Where each request's events go once they are committed (the broadcaster). */
  sink: Sink;
  /** `source` of every event; `addr` is filled from the first request when unset. */
  source: SourceRecord;
  /** Base of event URLs (`http.host`); derived from each request when unset. */
  baseUrl?: string;
  /** Event URLs as paths, no scheme or host (`http.relativeurls`); wins over `baseUrl`. */
  relativeUrls?: boolean;
  /** The path the API is served under (`http.prefix`), in every event URL. */
  pathPrefix?: string;
  actor?(req: Request): ActorRecord;
  /** Take the actor from an unverified Basic header when no authentication set a user. */
  actorFromBasicAuth: boolean;
  /** Build event URLs from forwarded headers; undefined follows Express's `trust proxy`. */
  trustProxy?: boolean;
  /** Write events as operations succeed instead of when the response does. */
  emitImmediately: boolean;
  /** Longest a response's end waits for the store to hold its events. */
  commitTimeoutMs: number;
  /**
   * When a success response's events cannot be stored within `commitTimeoutMs`: `spool`
   * (the stores keep them on disk, the response goes out) or `fail` (answer 503 instead,
   * events dropped, so the client retries). @default 'spool'
   */
  onStoreError?: 'spool' | 'fail';
  includeReferences: boolean;
  onError(err: Error, context: string): void;
}

export interface Emitter {
  /** Gives each request a Bridge holding its events until the response's outcome. */
  readonly middleware: RequestHandler;
  /** The request's bridge; throws when the middleware did not run for it. */
  bridgeOf(req: Request): Bridge;
}

/** The per-request half of the pipeline: a Bridge per request, its events held until the outcome. */
export function createEmitter(options: EmitOptions): Emitter {
  const { source } = options;
  const bridges = new WeakMap<IncomingMessage, Bridge>();
  // `/prefix/` and `prefix` alike become `/prefix`; no prefix is ''.
  const prefix = (options.pathPrefix ?? '').replace(/^\/*/, '/').replace(/\/+$/, '');
  const fixedBase = options.relativeUrls ? '' : options.baseUrl?.replace(/\/+$/, '');
  const fixedUrls = fixedBase !== undefined ? urlBuilderFor(fixedBase + prefix) : undefined;
  const resolveActor = options.actor ?? ((req: Request) => defaultActor(req, options.actorFromBasicAuth));
  const trusts = (req: Request) => options.trustProxy ?? Boolean(req.app?.get('trust proxy'));

  const middleware: RequestHandler = (req: Request, res: Response, next: NextFunction) => {
    if (source.addr === undefined) source.addr = `${os.hostname()}:${req.socket.localPort}`;
    let sink: Sink = options.sink;
    if (!options.emitImmediately) {
      const held = new HeldEvents(options.sink, (err) => options.onError(err, `${req.method} ${req.originalUrl}`));
      holdUntilOutcome(res, held, options.commitTimeoutMs, options.onStoreError === 'fail');
      sink = held;
    }
    bridges.set(
      req,
      new Bridge({
        sink,
        urls: fixedUrls ?? urlBuilderFor(requestBaseUrl(req, trusts(req)) + prefix),
        source,
        actor: resolveActor(req),
        request: requestRecord(req),
        includeReferences: options.includeReferences,
      }),
    );
    next();
  };

  const bridgeOf = (req: Request): Bridge => {
    const bridge = bridges.get(req);
    if (!bridge) throw new Error('notifications: the middleware is not mounted before this route (app.use(notifications.middleware))');
    return bridge;
  };
  return { middleware, bridgeOf };
}

/**
 * Writes the request's events once its storage work is done: when the response starts,
 * whatever its status (an operation that took effect has its event even when a later step
 * of the request fails), or when the client goes away first. An operation that ends
 * later still has its event, written as it ends. The response's end waits until the
 * store holds the events (at most `commitTimeoutMs`), so a client that saw a complete
 * response knows its events survive a crash of this process.
 *
 * With `failOnStoreError`, a success response that had not started when it ended
 * (`res.end()`, `res.send()`) and whose events the store refused is answered 503 instead,
 * so that the client retries; a response that streams its body has started before its
 * events are written, and they are spooled.
 */
function holdUntilOutcome(res: ServerResponse, held: HeldEvents, commitTimeoutMs: number, failOnStoreError: boolean): void {
  let committing: Promise<Error | undefined> | undefined;
  const commit = (refusable: boolean) => {
    committing = held.commit({ refusable }) ?? committing;
  };
  const writeHead = res.writeHead;
  res.writeHead = function (this: ServerResponse, ...args: unknown[]) {
    commit(false);
    return (writeHead as (...a: unknown[]) => ServerResponse).apply(this, args);
  } as typeof res.writeHead;
  const end = res.end;
  res.end = function (this: ServerResponse, ...args: unknown[]) {
    // end() without an explicit writeHead: the status can still change.
    if (!res.headersSent) commit(failOnStoreError && res.statusCode >= 200 && res.statusCode < 400);
    const pending = committing;
    if (!pending) return (end as (...a: unknown[]) => ServerResponse).apply(this, args);
    committing = undefined;
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), commitTimeoutMs + COMMIT_GRACE_MS)));
    void Promise.race([pending, late]).then((refused) => {
      clearTimeout(timer);
      if (refused && !res.headersSent) answerUnavailable(res, end);
      else (end as (...a: unknown[]) => ServerResponse).apply(this, args);
    });
    return this;
  } as typeof res.end;
  // A client that goes away does not undo what its request already did.
  res.on('close', () => void held.commit());
}

/**
 * How much longer than `commitTimeoutMs` a response's end waits, at most. A spooling store
 * settles every write at `commitTimeoutMs` (stored, spooled or refused); this wait only
 * bounds a store that does not, and must not end the response before the store decides.
 */
const COMMIT_GRACE_MS = 100;

/** Headers that describe the success response's body or result, not valid on the error that replaces it. */
const RESULT_HEADERS = [
  'content-type', 'content-length', 'content-range', 'content-encoding', 'etag', 'last-modified', 'location', 'range',
  'accept-ranges', 'docker-content-digest', 'docker-upload-uuid', 'oci-subject', 'link',
];

/**
 * Replaces a success response whose events the store refused with Distribution's 503
 * `UNAVAILABLE` error, with `Retry-After`: the client retries the request, and the retry
 * has its events.
 */
function answerUnavailable(res: ServerResponse, end: ServerResponse['end']): void {
  for (const name of RESULT_HEADERS) res.removeHeader(name);
  const body = JSON.stringify({
    errors: [{ code: 'UNAVAILABLE', message: 'service unavailable', detail: 'the notifications of this request could not be stored; retry it' }],
  });
  res.statusCode = 503;
  res.setHeader('Retry-After', '1');
  res.setHeader('Content-Type', 'application/json; charset=utf-8');
  res.setHeader('Content-Length', Buffer.byteLength(body));
  (end as (chunk: string) => ServerResponse).call(res, body);
}
