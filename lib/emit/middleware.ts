import os from 'node:os';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import type { ActorRecord, SourceRecord } from '../model/event';
import type { Sink } from '../deliver/sink';
import { Bridge, urlBuilderFor, type UrlBuilder } from './bridge';
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
  /**
   * Marks each request: its Bridge, holding its events until the response's outcome, is
   * made when a route first asks for it (`bridgeOf`, `repository`).
   */
  readonly middleware: RequestHandler;
  /** The request's bridge; throws when the middleware did not run for it. */
  bridgeOf(req: Request): Bridge;
}

/** The per-request half of the pipeline: a Bridge per request that has events, held until the outcome. */
export function createEmitter(options: EmitOptions): Emitter {
  const { source } = options;
  // Not a property of the request: Express gives each request object a map of its own, so
  // a property added to one costs V8 a new map, far more than a weak entry.
  const bridges = new WeakMap<IncomingMessage, Bridge | undefined>();
  // `/prefix/` and `prefix` alike become `/prefix`; no prefix is ''.
  const prefix = (options.pathPrefix ?? '').replace(/^\/*/, '/').replace(/\/+$/, '');
  const fixedBase = options.relativeUrls ? '' : options.baseUrl?.replace(/\/+$/, '');
  const fixedUrls = fixedBase !== undefined ? urlBuilderFor(fixedBase + prefix) : undefined;
  const resolveActor = options.actor ?? ((req: Request) => defaultActor(req, options.actorFromBasicAuth));
  const trusts = (req: Request) => options.trustProxy ?? Boolean(req.app?.get('trust proxy'));
  // Requests come from few bases (one per host name clients use): their URL builders are kept.
  const builders = new Map<string, UrlBuilder>();
  const urlsFor = (base: string): UrlBuilder => {
    let urls = builders.get(base);
    if (urls === undefined) {
      if (builders.size >= MAX_URL_BUILDERS) builders.clear(); // Host is the client's to choose
      builders.set(base, (urls = urlBuilderFor(base)));
    }
    return urls;
  };
  const lateEnds = new LateEnds(options.commitTimeoutMs + COMMIT_GRACE_MS);

  /** The request's Bridge, made when a route first asks for it (`bridgeOf`). */
  const makeBridge = (req: Request): Bridge => {
    let sink: Sink = options.sink;
    const res = req.res;
    // A response that has started, or whose client has gone, has nothing left to wait for:
    // the events go as they come (as for a request without a response).
    if (!options.emitImmediately && res && !res.headersSent && !res.destroyed) {
      // What the request's errors are reported with, taken now: what a weak map holds for
      // the request or its response must not lead back to either (Express links them both
      // ways), or a young-generation collection cannot free them while the entry is there.
      const method = req.method;
      const url = req.originalUrl;
      const held = new HeldEvents(options.sink, (err) => options.onError(err, `${method} ${url}`));
      holdUntilOutcome(res, held, lateEnds, options.onStoreError === 'fail');
      sink = held;
    }
    return new Bridge({
      sink,
      urls: fixedUrls ?? urlsFor(requestBaseUrl(req, trusts(req)) + prefix),
      source,
      actor: resolveActor(req),
      request: requestRecord(req),
      includeReferences: options.includeReferences,
    });
  };

  // The middleware only marks the request: most requests of a registry (the `/v2/` ping,
  // the steps of an upload, tag lists) make no event, and pay nothing more.
  const middleware: RequestHandler = (req: Request, _res: Response, next: NextFunction) => {
    if (source.addr === undefined) source.addr = `${os.hostname()}:${req.socket.localPort}`;
    bridges.set(req, undefined);
    next();
  };

  const bridgeOf = (req: Request): Bridge => {
    let bridge = bridges.get(req);
    if (bridge) return bridge;
    if (!bridges.has(req)) throw new Error('notifications: the middleware is not mounted before this route (app.use(notifications.middleware))');
    bridges.set(req, (bridge = makeBridge(req)));
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
function holdUntilOutcome(res: ServerResponse, held: HeldEvents, lateEnds: LateEnds, failOnStoreError: boolean): void {
  const methods = heldMethodsOf(Object.getPrototypeOf(res) as ServerResponse);
  // A client that goes away does not undo what its request already did.
  res.on('close', () => void held.commit());
  if (methods && res.writeHead === methods.writeHead && res.end === methods.end && !outcomes.has(res)) {
    // The usual case: the response's prototype (its outermost app's `app.response`) looks
    // the outcome up. A property added to a response of an Express app costs about 1.3 µs,
    // more than the rest of this hold (Express sets the prototype of each response).
    outcomes.set(res, new Outcome(held, methods.original.writeHead, methods.original.end, lateEnds, failOnStoreError));
    return;
  }
  // A middleware before this one wrapped the methods on the response itself (or another
  // emitter holds this response): wrap them there too. The request's state is in closures
  // on the response, not in the weak map: the methods it wraps often lead back to the
  // response (a logger's `res.end.bind(res)`), and an entry whose value reaches its own key
  // survives every young-generation collection, taking the whole request with it.
  const outcome = new Outcome(held, res.writeHead, res.end, lateEnds, failOnStoreError);
  res.writeHead = function writeHeadHeld(this: ServerResponse, ...args: unknown[]): ServerResponse {
    outcome.commit(false);
    return (outcome.writeHead as (...a: unknown[]) => ServerResponse).apply(this, args);
  } as typeof res.writeHead;
  res.end = function endHeld(this: ServerResponse, ...args: unknown[]): ServerResponse {
    return outcome.endHeld(this, args);
  } as typeof res.end;
}

/** The outcome of each response whose events its prototype's methods hold (see `heldMethodsOf`). */
const outcomes = new WeakMap<ServerResponse, Outcome>();

interface HeldMethods {
  writeHead: ServerResponse['writeHead'];
  end: ServerResponse['end'];
  /** What the prototype's chain answered before: the methods these call. */
  original: { writeHead: ServerResponse['writeHead']; end: ServerResponse['end'] };
}

/** The held methods put on each response prototype, by prototype. */
const heldPrototypes = new WeakMap<object, HeldMethods>();

/**
 * The held `writeHead` and `end` for responses of this prototype: put once on the
 * outermost Express app's `app.response` above it; undefined when it is no Express app's
 * (the response's own methods are wrapped then). They hold the events of a response in
 * `outcomes` and call the prototype chain's own methods for any other response.
 */
function heldMethodsOf(proto: ServerResponse): HeldMethods | undefined {
  const known = heldPrototypes.get(proto);
  if (known) return known;
  // Only an Express app's response prototype, never Node's, which every server shares;
  // and the outermost one: a mounted sub-app's inherits from its parent's, and a response
  // goes back to the parent's when the sub-app passes it on (an error, no route matched).
  let root: ServerResponse | undefined;
  for (let p = proto; p && Object.prototype.hasOwnProperty.call(p, 'app'); p = Object.getPrototypeOf(p) as ServerResponse) root = p;
  if (!root) return undefined;
  const methods = heldPrototypes.get(root) ?? holdOn(root);
  heldPrototypes.set(proto, methods);
  return methods;
}

/** Puts the held `writeHead` and `end` on `proto`, calling what its chain answered before. */
function holdOn(proto: ServerResponse): HeldMethods {
  const original = { writeHead: proto.writeHead, end: proto.end };
  const writeHead = original.writeHead as (...a: unknown[]) => ServerResponse;
  const end = original.end as (...a: unknown[]) => ServerResponse;
  const methods: HeldMethods = {
    original,
    writeHead: function writeHeadHeld(this: ServerResponse, ...args: unknown[]): ServerResponse {
      outcomes.get(this)?.commit(false);
      return writeHead.apply(this, args);
    } as ServerResponse['writeHead'],
    end: function endHeld(this: ServerResponse, ...args: unknown[]): ServerResponse {
      const outcome = outcomes.get(this);
      return outcome ? outcome.endHeld(this, args) : end.apply(this, args);
    } as ServerResponse['end'],
  };
  proto.writeHead = methods.writeHead;
  proto.end = methods.end;
  heldPrototypes.set(proto, methods);
  return methods;
}

/** A response's events on their way to the store, and the methods of the response they wrap. */
class Outcome {
  committing?: Promise<Error | undefined>;

  constructor(
    readonly held: HeldEvents,
    readonly writeHead: ServerResponse['writeHead'],
    readonly end: ServerResponse['end'],
    readonly lateEnds: LateEnds,
    readonly failOnStoreError: boolean,
  ) {}

  commit(refusable: boolean): void {
    this.committing = this.held.commit(refusable ? REFUSABLE : SPOOLED) ?? this.committing;
  }

  /** `res.end(...args)`: once the events are stored (or at the deadline). */
  endHeld(res: ServerResponse, args: unknown[]): ServerResponse {
    const end = this.end as (...a: unknown[]) => ServerResponse;
    // end() without an explicit writeHead: the status can still change.
    if (!res.headersSent) this.commit(this.failOnStoreError && res.statusCode >= 200 && res.statusCode < 400);
    const pending = this.committing;
    if (!pending) return end.apply(res, args);
    this.committing = undefined;
    this.lateEnds.wait(pending, (refused) => {
      if (refused && !res.headersSent) answerUnavailable(res, this.end);
      else end.apply(res, args);
    });
    return res;
  }
}

const REFUSABLE = { refusable: true } as const;
const SPOOLED = { refusable: false } as const;

/**
 * Ends responses once their events are stored, or at a deadline, whichever comes first:
 * one timer for all of them rather than one per response. Every wait is as long, so
 * deadlines come in the order the waits began and the earliest is always the first.
 * The timer ends only the waits whose deadline it was set for: one whose deadline passed
 * while the loop was busy gets a timer of its own, run after the store's timers that came
 * due before it (a spooling store settles its writes on a timer of its own).
 */
export class LateEnds {
  private waits: LateEnd[] = [];
  private head = 0;
  private timer?: NodeJS.Timeout;

  constructor(private readonly waitMs: number) {}

  /** Calls `finish` with what `pending` resolves to, or with undefined after `waitMs`, once. */
  wait(pending: Promise<Error | undefined>, finish: (refused: Error | undefined) => void): void {
    const entry: LateEnd = { at: performance.now() + this.waitMs, finish };
    this.waits.push(entry);
    if (this.timer === undefined) this.arm(this.waitMs);
    void pending.then((refused) => {
      const done = entry.finish;
      if (!done) return; // too late: already ended
      entry.finish = undefined;
      this.dropSettled();
      done(refused);
    });
  }

  private arm(ms: number): void {
    // Not holding the process open: a response waiting has its socket for that.
    this.timer = setTimeout(this.expire, Math.max(1, ms)).unref();
  }

  /**
   * Forgets the waits at the front that have ended. The timer stays armed when none is
   * waiting: it ends nothing then, and a stream of requests costs one timer per `waitMs`
   * rather than one per response.
   */
  private dropSettled(): void {
    while (this.head < this.waits.length && !this.waits[this.head].finish) this.head++;
    if (this.head === this.waits.length) {
      this.waits.length = 0;
      this.head = 0;
    } else if (this.head > 1024 && this.head * 2 > this.waits.length) {
      this.waits = this.waits.slice(this.head);
      this.head = 0;
    }
  }

  private readonly expire = (): void => {
    this.timer = undefined;
    // Only what is due by the clock: a timer may fire a little before the time it was set for.
    const now = performance.now();
    while (this.head < this.waits.length && this.waits[this.head].at <= now) {
      const entry = this.waits[this.head++];
      const done = entry.finish;
      entry.finish = undefined;
      done?.(undefined);
    }
    this.dropSettled();
    if (this.head < this.waits.length && this.timer === undefined) {
      this.arm(this.waits[this.head].at - performance.now());
    }
  };
}

interface LateEnd {
  at: number;
  /** Undefined once the response has ended. */
  finish?: (refused: Error | undefined) => void;
}

/**
 * How much longer than `commitTimeoutMs` a response's end waits, at most. A spooling store
 * settles every write at `commitTimeoutMs` (stored, spooled or refused); this wait only
 * bounds a store that does not, and must not end the response before the store decides.
 */
const COMMIT_GRACE_MS = 100;

/** URL builders kept, one per base URL requests came with. */
const MAX_URL_BUILDERS = 64;

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
