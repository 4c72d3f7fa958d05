import type { Event } from '../model/event';
import { ClosedSinkError, sleep, type Sink } from './sink';

/** Decides how long a RetryingSink waits before its next attempt. */
export interface RetryStrategy {
  /** Milliseconds to wait before the next attempt; 0 means try now. */
  delay(): number;
  failure(err: Error): void;
  success(): void;
  /** A short text for stats, e.g. `closed`, `open`. */
  state(): string;
}

export type BreakerState = 'closed' | 'open' | 'half-open';

export interface BreakerOptions {
  /** Consecutive failures before the breaker opens. @default 10 */
  threshold?: number;
  /** How long an open breaker waits before letting one probe through, in ms. @default 1000 (1s) */
  backoffMs?: number;
  /**
   * Ceiling of the wait, which doubles after each failed probe; equal to `backoffMs`
   * it stays fixed, as in Distribution. @default backoffMs
   */
  maxBackoffMs?: number;
  /** Fraction of each wait drawn at random (0 to 1), so registries do not retry in step. @default 0 */
  jitter?: number;
  /** Told of every change of state. */
  onStateChange?(state: BreakerState): void;
  now?: () => number;
  random?: () => number;
}

/**
 * A circuit breaker: attempts go through until `threshold` consecutive failures, then it
 * opens and waits; when the wait is over one probe goes through (half-open). A success
 * closes it; a failed probe opens it again with twice the wait, up to `maxBackoffMs`.
 * With the defaults this is Distribution's breaker (threshold 10, a fixed 1s backoff).
 */
export class Breaker implements RetryStrategy {
  private failures = 0;
  private opens = 0;
  private lastFailure = 0;
  private wait = 0;
  private current: BreakerState = 'closed';
  private readonly threshold: number;
  private readonly backoffMs: number;
  private readonly maxBackoffMs: number;
  private readonly jitter: number;
  private readonly now: () => number;
  private readonly random: () => number;

  constructor(private readonly options: BreakerOptions = {}) {
    this.threshold = options.threshold ?? 10;
    this.backoffMs = options.backoffMs ?? 1000;
    this.maxBackoffMs = Math.max(this.backoffMs, options.maxBackoffMs ?? this.backoffMs);
    this.jitter = Math.min(1, Math.max(0, options.jitter ?? 0));
    this.now = options.now ?? Date.now;
    this.random = options.random ?? Math.random;
  }

  delay(): number {
    if (this.failures < this.threshold) return 0;
    const remaining = this.lastFailure + this.wait - this.now();
    if (remaining > 0) return remaining;
    this.setState('half-open');
    return 0;
  }

  failure(): void {
    this.failures++;
    this.lastFailure = this.now();
    if (this.failures < this.threshold) return;
    this.opens++;
    const full = Math.min(this.maxBackoffMs, this.backoffMs * 2 ** Math.min(this.opens - 1, 30));
    this.wait = full * (1 - this.jitter * this.random());
    this.setState('open');
  }

  success(): void {
    this.failures = 0;
    this.opens = 0;
    this.setState('closed');
  }

  state(): BreakerState {
    return this.current;
  }

  private setState(state: BreakerState): void {
    if (state === this.current) return;
    this.current = state;
    this.options.onStateChange?.(state);
  }
}

export interface ExponentialBackoffOptions {
  /** First wait after a failure, in ms. @default 1000 (1s) */
  baseMs?: number;
  /** Ceiling on any one wait, in ms. @default 60000 (1m) */
  maxMs?: number;
  /** Fraction of each wait drawn at random, 0 to 1. @default 0.5 */
  jitter?: number;
  random?: () => number;
}

/** Waits base, 2·base, 4·base … up to a ceiling after consecutive failures, with jitter: a breaker that opens at once. */
export class ExponentialBackoff extends Breaker {
  constructor(options: ExponentialBackoffOptions = {}) {
    super({
      threshold: 1,
      backoffMs: options.baseMs ?? 1000,
      maxBackoffMs: options.maxMs ?? 60_000,
      jitter: options.jitter ?? 0.5,
      random: options.random,
    });
  }
}

/** The sink below asked us to wait (HTTP `Retry-After`); honoured on top of the strategy. */
export interface RetryAfter {
  retryAfterMs?: number;
}

/** A RetryingSink gave up on events after `maxRetries` failed attempts. */
export class RetriesExhaustedError extends Error {
  override readonly name = 'RetriesExhaustedError';
  constructor(
    readonly attempts: number,
    override readonly cause: Error,
  ) {
    super(`gave up after ${attempts} attempts: ${cause.message}`);
  }
}

export interface RetryingSinkOptions {
  /**
   * Failed attempts after the first before giving up on the events with
   * `RetriesExhaustedError`; -1 retries forever, as Distribution does. @default -1
   */
  maxRetries?: number;
  /** Failures not worth retrying (an endpoint that answered 410 Gone); they are thrown at once. */
  isPermanent?(err: Error): boolean;
  /** Called after each failed attempt with the wait that follows. */
  onRetry?(attempt: number, err: Error, waitMs: number): void;
}

/**
 * Retries writes to the sink below until they succeed, pacing attempts with a strategy.
 * `write` resolves only once the sink below has accepted the events. Closing cancels any
 * pending wait, so shutdown never hangs on a dead endpoint.
 */
export class RetryingSink implements Sink {
  private readonly stop = new AbortController();
  private readonly maxRetries: number;
  private closed?: Promise<void>;

  constructor(
    private readonly dst: Sink,
    readonly strategy: RetryStrategy,
    private readonly options: RetryingSinkOptions = {},
  ) {
    this.maxRetries = options.maxRetries ?? -1;
  }

  async write(events: readonly Event[]): Promise<void> {
    const signal = this.stop.signal;
    let retryAfter = 0;
    for (let attempt = 0; ; attempt++) {
      if (signal.aborted) throw new ClosedSinkError('retrying sink');
      if (retryAfter > 0) await sleep(retryAfter, signal, 'retrying sink');
      // Asked again after each wait: the strategy learns that its wait is over.
      for (let wait = this.strategy.delay(); wait > 0; wait = this.strategy.delay()) {
        await sleep(wait, signal, 'retrying sink');
      }
      try {
        await this.dst.write(events);
        this.strategy.success();
        return;
      } catch (err) {
        if (err instanceof ClosedSinkError) throw err;
        const error = err as Error & RetryAfter;
        this.strategy.failure(error);
        retryAfter = error.retryAfterMs ?? 0;
        if (this.options.isPermanent?.(error)) throw error;
        if (this.maxRetries >= 0 && attempt >= this.maxRetries) {
          throw new RetriesExhaustedError(attempt + 1, error);
        }
        this.options.onRetry?.(attempt + 1, error, Math.max(this.strategy.delay(), retryAfter));
      }
    }
  }

  prepare(events: readonly Event[]): void {
    this.dst.prepare?.(events);
  }

  close(): Promise<void> {
    this.closed ??= (async () => {
      this.stop.abort();
      await this.dst.close();
    })();
    return this.closed;
  }
}
