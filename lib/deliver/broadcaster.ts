import type { Event } from '../model/event';
import { ClosedSinkError, writeTo, type Sink } from './sink';

export interface BroadcasterOptions {
  /** Called when one sink refuses events; the other sinks still get them. */
  onError?(err: Error, sinkIndex: number): void;
}

/**
 * Fans events out to every sink at once. `write` resolves when every sink has answered;
 * a sink that fails is reported to `onError` and never keeps the others from their
 * events. Each sink below is expected to be quick to accept (a Queue), so one slow
 * endpoint does not hold up a request.
 */
export class Broadcaster implements Sink {
  private closed?: Promise<void>;
  /** Reports a failure of the first sink: the one-sink write's handler, made once. */
  private readonly firstFailed = (err: unknown): void => {
    this.options.onError?.(err as Error, 0);
  };

  constructor(
    private readonly sinks: readonly Sink[],
    private readonly options: BroadcasterOptions = {},
  ) {}

  write(events: readonly Event[]): Promise<void> {
    if (this.closed) return Promise.reject(new ClosedSinkError('broadcaster'));
    // One sink (a registry with one endpoint): its write and a handler, no array or promise per sink.
    if (this.sinks.length === 1) return writeTo(this.sinks[0], events).then(undefined, this.firstFailed);
    return this.writeAll(events);
  }

  private async writeAll(events: readonly Event[]): Promise<void> {
    const results = await Promise.allSettled(this.sinks.map((s) => writeTo(s, events)));
    results.forEach((r, i) => {
      if (r.status === 'rejected') this.options.onError?.(r.reason as Error, i);
    });
  }

  close(): Promise<void> {
    this.closed ??= Promise.allSettled(this.sinks.map((s) => s.close())).then(() => undefined);
    return this.closed;
  }
}
