import { DEFAULTS } from '../config/defaults';

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
    this.threshold = options.threshold ?? DEFAULTS.endpoint.threshold;
    this.backoffMs = options.backoffMs ?? DEFAULTS.endpoint.backoffMs;
    this.maxBackoffMs = Math.max(this.backoffMs, options.maxBackoffMs ?? this.backoffMs);
    this.jitter = Math.min(1, Math.max(0, options.jitter ?? DEFAULTS.endpoint.jitter));
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
      backoffMs: options.baseMs ?? DEFAULTS.exponentialBackoff.baseMs,
      maxBackoffMs: options.maxMs ?? DEFAULTS.exponentialBackoff.maxMs,
      jitter: options.jitter ?? DEFAULTS.exponentialBackoff.jitter,
      random: options.random,
    });
  }
}
