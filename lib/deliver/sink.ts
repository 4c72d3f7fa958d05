import type { Event } from '../model/event';

/**
 * The one contract every stage of the pipeline honours.
 *
 * `write` commits events to the sink: once it resolves, the caller may assume the
 * events are the sink's responsibility. A write after `close` rejects with
 * `ClosedSinkError`. `close` releases what the sink holds, forwards to the sink it
 * wraps, and never hangs; closing twice is harmless.
 */
export interface Sink {
  write(events: readonly Event[]): Promise<void>;
  close(): Promise<void>;
  /**
   * A hint, optional to honour: these very events (the same array) are likely the next
   * write. A sink may do work for them ahead, while it would otherwise wait on I/O; a
   * sink that wraps another passes the hint on.
   */
  prepare?(events: readonly Event[]): void;
}

/**
 * A sink's write; one that throws instead of rejecting (a sink written without `async`)
 * rejects all the same, so that callers handle one kind of failure.
 */
export function writeTo(sink: Sink, events: readonly Event[]): Promise<void> {
  try {
    return sink.write(events);
  } catch (err) {
    return Promise.reject(err);
  }
}

/** A write reached a sink that was already closed. */
export class ClosedSinkError extends Error {
  override readonly name = 'ClosedSinkError';
  constructor(readonly sink: string) {
    super(`${sink}: sink is closed`);
  }
}

/** An AbortSignal-aware sleep: rejects with `ClosedSinkError` when the signal fires. */
export function sleep(ms: number, signal: AbortSignal, sink: string): Promise<void> {
  if (signal.aborted) return Promise.reject(new ClosedSinkError(sink));
  return new Promise((resolve, reject) => {
    const onAbort = () => {
      clearTimeout(timer);
      reject(new ClosedSinkError(sink));
    };
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}
