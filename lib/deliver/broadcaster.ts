import type { Event } from '../model/event';
import { ClosedSinkError, type Sink } from './sink';

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

  constructor(
    private readonly sinks: readonly Sink[],
    private readonly options: BroadcasterOptions = {},
  ) {}

  async write(events: readonly Event[]): Promise<void> {
    if (this.closed) throw new ClosedSinkError('broadcaster');
    const results = await Promise.allSettled(this.sinks.map((s) => s.write(events)));
    results.forEach((r, i) => {
      if (r.status === 'rejected') this.options.onError?.(r.reason as Error, i);
    });
  }

  close(): Promise<void> {
    this.closed ??= Promise.allSettled(this.sinks.map((s) => s.close())).then(() => undefined);
    return this.closed;
  }
}
