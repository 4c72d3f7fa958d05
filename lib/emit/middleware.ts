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
  /** Longest a success response's end waits for the store to hold its events. */
  commitTimeoutMs: number;
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
      holdUntilOutcome(res, held, options.commitTimeoutMs);
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
 * Commits the request's events when its response starts with a success status, and drops
 * them on an error status or an aborted request. The response's end waits until the
 * store holds the events (at most `commitTimeoutMs`), so a client that saw a complete
 * success response knows its events survive a crash of this process.
 */
function holdUntilOutcome(res: ServerResponse, held: HeldEvents, commitTimeoutMs: number): void {
  let committing: Promise<void> | undefined;
  const decide = (status: number) => {
    if (status >= 200 && status < 400) committing = held.commit() ?? committing;
    else held.rollback();
  };
  const writeHead = res.writeHead;
  res.writeHead = function (this: ServerResponse, ...args: unknown[]) {
    decide(typeof args[0] === 'number' ? args[0] : res.statusCode);
    return (writeHead as (...a: unknown[]) => ServerResponse).apply(this, args);
  } as typeof res.writeHead;
  const end = res.end;
  res.end = function (this: ServerResponse, ...args: unknown[]) {
    // end() without an explicit writeHead sends the status set so far.
    if (!res.headersSent) decide(res.statusCode);
    const pending = committing;
    if (!pending) return (end as (...a: unknown[]) => ServerResponse).apply(this, args);
    committing = undefined;
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<void>((resolve) => (timer = setTimeout(resolve, commitTimeoutMs)));
    void Promise.race([pending, late]).then(() => {
      clearTimeout(timer);
      (end as (...a: unknown[]) => ServerResponse).apply(this, args);
    });
    return this;
  } as typeof res.end;
  res.on('close', () => held.rollback());
}
