import { DEFAULTS } from '../config/defaults';
import type { Event } from '../model/event';
import type { RetryStrategy } from './breaker';
import { ClosedSinkError, sleep, type Sink } from './sink';

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

/** A write was interrupted (`interrupt()`) before the sink below accepted its events; the sink stays open. */
export class WriteInterruptedError extends Error {
  override readonly name = 'WriteInterruptedError';
  constructor() {
    super('retrying sink: write interrupted before the events were accepted');
  }
}

export interface RetryingSinkOptions {
  /**
   * Failed attempts after the first before giving up on the events with
   * `RetriesExhaustedError`; -1 retries forever, as Distribution does. @default -1
   */
  maxRetries?: number;
  /**
   * Failures not worth retrying (an endpoint that answered 410 Gone, or refused these
   * events with a 413): they are thrown at once, and leave the strategy as it was, since
   * an endpoint that answers is not down.
   */
  isPermanent?(err: Error): boolean;
  /** Called after each failed attempt with the wait that follows. */
  onRetry?(attempt: number, err: Error, waitMs: number): void;
  /**
   * Longest wait a `Retry-After` answer may ask for; a longer one waits this long. A
   * proxy that asks for a month must not stop an endpoint for a month.
   * @default 300000 (5m)
   */
  maxRetryAfterMs?: number;
}

/**
 * Retries writes to the sink below until they succeed, pacing attempts with a strategy.
 * `write` resolves only once the sink below has accepted the events. Closing cancels any
 * pending wait, so shutdown never hangs on a dead endpoint.
 */
export class RetryingSink implements Sink {
  private readonly stop = new AbortController();
  /** Aborted by `interrupt()`, then replaced: it stops the writes under way, not later ones. */
  private interrupts = new AbortController();
  private readonly maxRetries: number;
  private closed?: Promise<void>;

  constructor(
    private readonly dst: Sink,
    readonly strategy: RetryStrategy,
    private readonly options: RetryingSinkOptions = {},
  ) {
    this.maxRetries = options.maxRetries ?? DEFAULTS.endpoint.maxRetries;
  }

  async write(events: readonly Event[]): Promise<void> {
    const signal = this.stop.signal;
    const interrupted = this.interrupts.signal;
    const wait = (ms: number) => this.wait(ms, interrupted);
    let retryAfter = 0;
    for (let attempt = 0; ; attempt++) {
      if (signal.aborted) throw new ClosedSinkError('retrying sink');
      if (interrupted.aborted) throw new WriteInterruptedError();
      if (retryAfter > 0) await wait(retryAfter);
      // Asked again after each wait: the strategy learns that its wait is over.
      for (let delay = this.strategy.delay(); delay > 0; delay = this.strategy.delay()) {
        await wait(delay);
      }
      try {
        await this.dst.write(events);
        this.strategy.success();
        return;
      } catch (err) {
        if (err instanceof ClosedSinkError) throw err;
        const error = err as Error & RetryAfter;
        if (this.options.isPermanent?.(error)) throw error;
        this.strategy.failure(error);
        retryAfter = Math.min(error.retryAfterMs ?? 0, this.options.maxRetryAfterMs ?? DEFAULTS.http.maxRetryAfterMs);
        if (this.maxRetries >= 0 && attempt >= this.maxRetries) {
          throw new RetriesExhaustedError(attempt + 1, error);
        }
        this.options.onRetry?.(attempt + 1, error, Math.max(this.strategy.delay(), retryAfter));
      }
    }
  }

  /**
   * Stops the writes under way without closing: each rejects with `WriteInterruptedError`
   * at its next wait, or after the attempt on the wire when that one fails (an attempt
   * that succeeds still resolves). Later writes go through as usual.
   */
  interrupt(): void {
    this.interrupts.abort();
    this.interrupts = new AbortController();
  }

  /** Waits `ms`; rejects with ClosedSinkError on close, with WriteInterruptedError on `interrupt()`. */
  private wait(ms: number, interrupted: AbortSignal): Promise<void> {
    if (interrupted.aborted) return Promise.reject(new WriteInterruptedError());
    const waiting = new AbortController();
    const onInterrupt = () => waiting.abort();
    interrupted.addEventListener('abort', onInterrupt, { once: true });
    const onClose = () => waiting.abort();
    this.stop.signal.addEventListener('abort', onClose, { once: true });
    if (this.stop.signal.aborted) waiting.abort();
    return sleep(ms, waiting.signal, 'retrying sink')
      .catch((err) => {
        throw this.stop.signal.aborted ? err : new WriteInterruptedError();
      })
      .finally(() => {
        interrupted.removeEventListener('abort', onInterrupt);
        this.stop.signal.removeEventListener('abort', onClose);
      });
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
