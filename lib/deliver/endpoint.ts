import type https from 'node:https';
import type { Event } from '../model/event';
import { DEFAULTS } from '../config/defaults';
import { normalizeEndpoint, type EndpointConfig, type EndpointInit } from '../config/normalize';
import { Filter } from './filter';
import { payloadEncoder, type EncodedRequest } from '../codec/payload';
import { HttpDeliveryError, HttpSink, HttpStatusError } from './http-sink';
import { HttpTimeoutError } from './http-transport';
import { Queue } from './queue';
import { Breaker } from './breaker';
import { RetryingSink } from './retrying-sink';
import type { Sink } from './sink';
import { EndpointStats } from '../inspect/endpoint-stats';
import { webhookSigner } from '../codec/signing';
import type { QueueStore } from '../stores/queue-store';
import { replayDeadLetters, type DeadLetter, type DeadLetterStore } from '../stores/dead-letter-store';
import { MemoryDeadLetterStore } from '../stores/memory-dead-letters';

export interface EndpointOptions {
  /** Where pending events live. @default a MemoryStore */
  store?: QueueStore;
  /** Where events given up on after `maxRetries` go. @default a MemoryDeadLetterStore */
  deadLetters?: DeadLetterStore;
  /** Counters and metrics this endpoint reports to. @default fresh counters, no metrics */
  stats?: EndpointStats;
  /** On shutdown, how long to keep delivering, in ms. @default 2000 (2s) */
  drainTimeoutMs?: number;
  /** Agent for `https:` endpoints, e.g. one trusting a private CA. */
  httpsAgent?: https.Agent;
  /** Replaces the configured `format` with an encoding of one's own. */
  encode?(events: readonly Event[]): EncodedRequest;
  /** Where delivery problems are reported. @default console.error */
  onError?(err: Error): void;
  /** Failed attempts are reported at most once per this, with a count of those not shown. @default 10000 (10s) */
  failureLogIntervalMs?: number;
}

/** An endpoint answered `410 Gone`: it stops delivering until it is configured again. */
const isGone = (err: Error) => err instanceof HttpStatusError && err.status === 410;

/** A request of several events timed out: the receiver may handle them one by one. */
const isTimeout = (err: Error) => err instanceof HttpDeliveryError && err.cause instanceof HttpTimeoutError;

/** How long requests stay shorter after a timeout cut them, before they may carry a whole write again. */
const SHRINK_HOLD_MS = 60_000;

/**
 * Between the retrying sink and the HTTP sink when requests carry several events. A
 * receiver that handles events one at a time can take longer than `timeout` over a batch
 * it would take one by one: when a request of several events times out, later requests
 * carry half as many (down to one) for a minute. A write retried after a failure resumes
 * after the requests already accepted, so the retry resends nothing the endpoint took.
 */
class ShrinkOnTimeout implements Sink {
  private limit = Infinity;
  private shrunkAt = 0;
  private progress?: { events: readonly Event[]; sent: number };

  constructor(private readonly dst: Sink) {}

  async write(events: readonly Event[]): Promise<void> {
    if (this.limit !== Infinity && performance.now() - this.shrunkAt > SHRINK_HOLD_MS) this.limit = Infinity;
    const progress = this.progress?.events === events ? this.progress : { events, sent: 0 };
    this.progress = progress;
    while (progress.sent < events.length) {
      // The very array when it goes whole: the body measured or prepared for it is reused.
      const part = progress.sent === 0 && events.length <= this.limit ? events : events.slice(progress.sent, progress.sent + this.limit);
      try {
        await this.dst.write(part);
      } catch (err) {
        if (part.length > 1 && isTimeout(err as Error)) {
          this.limit = Math.ceil(part.length / 2);
          this.shrunkAt = performance.now();
        }
        throw err;
      }
      progress.sent += part.length;
    }
    this.progress = undefined;
  }

  prepare(events: readonly Event[]): void {
    if (events.length <= this.limit) this.dst.prepare?.(events);
  }

  close(): Promise<void> {
    return this.dst.close();
  }
}

/**
 * Reports failed attempts (an answer that is not success, no answer) to `report`, at most
 * one line per `intervalMs`, counting the failures it did not show: an endpoint that is
 * down for an hour makes a few hundred lines, not a million. Messages carry the URL as
 * shown (credentials redacted).
 */
function failureLog(report: (err: Error) => void, intervalMs: number) {
  let lastAt = -Infinity;
  let unshown = 0;
  return (attempt: number, err: Error, waitMs: number) => {
    const now = performance.now();
    if (now - lastAt < intervalMs) {
      unshown++;
      return;
    }
    const more = unshown > 0 ? ` (${unshown} more failed attempts since the last report)` : '';
    report(new Error(`delivery attempt ${attempt} failed: ${err.message}; next attempt in ${Math.round(waitMs)}ms${more}`));
    lastAt = now;
    unshown = 0;
  };
}

/**
 * One webhook endpoint: Filter -> Queue -> RetryingSink -> HttpSink (with requests cut
 * shorter after a timeout when they carry several events), read top to bottom
 * in the constructor. Writes return once events are queued; delivery happens behind.
 */
export class Endpoint implements Sink {
  readonly config: EndpointConfig;
  readonly stats: EndpointStats;
  readonly queue: Queue;
  readonly deadLetters: DeadLetterStore;
  private readonly head: Sink;
  private readonly http: HttpSink;
  /** Why delivery stopped for good (the endpoint answered 410 Gone). */
  gone?: Error;
  private readonly dropped: (events: readonly Event[], reason: Error) => void;

  constructor(init: EndpointInit, options: EndpointOptions = {}) {
    // The one normaliser: defaults filled (an explicit undefined too), every value checked.
    this.config = normalizeEndpoint(init, `endpoint ${JSON.stringify(init.name)}`);
    const c = this.config;
    const onError = options.onError ?? ((err: Error) => console.error(`notifications: endpoint ${c.name}: ${err.message}`));
    this.stats = options.stats ?? new EndpointStats(c.name);

    // The queue measures each body of several events against maxBytes; the sink then sends
    // that very body rather than encoding the events again.
    const encode = options.encode ?? payloadEncoder(c.format, c.envelope);
    const measured = new WeakMap<readonly Event[], EncodedRequest>();
    const measure = (events: readonly Event[]) => {
      const encoded = encode(events);
      measured.set(events, encoded);
      return Buffer.byteLength(encoded.body);
    };
    const http = new HttpSink(c.url, {
      timeoutMs: c.timeoutMs,
      headers: c.headers,
      httpsAgent: options.httpsAgent,
      encode: (events) => measured.get(events) ?? encode(events),
      sign: c.secrets.length > 0 ? webhookSigner(c.secrets) : undefined,
      hooks: this.stats.httpHooks(),
    });
    this.http = http;
    const breaker = new Breaker({
      threshold: c.threshold,
      backoffMs: c.backoffMs,
      maxBackoffMs: c.maxBackoffMs,
      jitter: c.jitter,
      onStateChange: (state) => this.stats.setState(state),
    });
    const below = c.maxEvents > 1 ? new ShrinkOnTimeout(http) : http;
    const retrying = new RetryingSink(below, breaker, {
      maxRetries: c.maxRetries,
      isPermanent: isGone,
      maxRetryAfterMs: Math.max(c.maxBackoffMs, DEFAULTS.http.maxRetryAfterMs),
      onRetry: failureLog(onError, options.failureLogIntervalMs ?? DEFAULTS.http.failureLogIntervalMs),
    });
    const queueHooks = this.stats.queueHooks();
    this.dropped = (events, reason) => queueHooks.dropped?.(events, reason);
    this.deadLetters = options.deadLetters ?? new MemoryDeadLetterStore();
    this.queue = new Queue(retrying, {
      store: options.store,
      deadLetters: this.deadLetters,
      maxEvents: c.maxEvents,
      maxBytes: c.maxBytes,
      measure,
      lingerMs: c.lingerMs,
      drainTimeoutMs: options.drainTimeoutMs,
      hooks: queueHooks,
      onError,
      isFatal: isGone,
      onHalt: (err) => {
        this.gone = err;
        this.stats.setState('gone');
        onError(new Error(`${err.message}: endpoint is gone; delivery stopped, pending events kept in the store`));
      },
    });
    this.head = new Filter(this.queue, {
      ignore: { ...c.ignore, mediaTypes: [...c.ignore.mediaTypes, ...c.ignoredMediaTypes] },
      include: c.include,
    });
  }

  get name(): string {
    return this.config.name;
  }

  get url(): string {
    return this.config.url;
  }

  /** The URL as stats and logs show it, credentials redacted. */
  get shownUrl(): string {
    return this.http.url;
  }

  /**
   * Checks the store is usable (rejects with StoreOpenError naming it) and counts the
   * events a durable store already holds, so stats show the backlog after a restart.
   */
  async start(): Promise<void> {
    await this.queue.store.open?.();
    this.stats.backlog(await this.queue.pending());
  }

  /** Events given up on after `maxRetries`, oldest first. */
  listDeadLetters(limit?: number): Promise<DeadLetter[]> {
    return this.deadLetters.list({ limit });
  }

  /**
   * Sends dead letters again: takes them out of the dead-letter store (those with these
   * event ids, or all) and queues them, ids unchanged, at the end of the queue.
   * Resolves to the events queued.
   */
  async replayDeadLetters(ids?: readonly string[]): Promise<Event[]> {
    return replayDeadLetters(this.deadLetters, (events) => this.queue.write(events), ids);
  }

  async write(events: readonly Event[]): Promise<void> {
    if (this.gone) {
      this.dropped(events, this.gone);
      return;
    }
    return this.head.write(events);
  }

  /** Stops taking events, delivers for up to the drain timeout, then cancels retries. */
  close(): Promise<void> {
    return this.head.close();
  }
}
