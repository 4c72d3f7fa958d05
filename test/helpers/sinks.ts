import type { Event } from '../../lib';
import type { Sink } from '../../lib/deliver/sink';
import { ClosedSinkError } from '../../lib/deliver/sink';

/** Records every event written to it, in order. */
export class RecordingSink implements Sink {
  readonly events: Event[] = [];
  readonly writes: Event[][] = [];
  closed = false;
  private waiters: Array<{ n: number; resolve: () => void }> = [];

  async write(events: readonly Event[]): Promise<void> {
    if (this.closed) throw new ClosedSinkError('recording sink');
    this.writes.push([...events]);
    this.events.push(...events);
    this.waiters = this.waiters.filter((w) => {
      if (this.events.length >= w.n) w.resolve();
      return this.events.length < w.n;
    });
  }

  /** Resolves once at least `n` events have been written. */
  received(n: number): Promise<void> {
    if (this.events.length >= n) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push({ n, resolve }));
  }

  async close(): Promise<void> {
    this.closed = true;
  }
}

/** Fails every write while `failing` says so, then records like a RecordingSink. */
export class FlakySink extends RecordingSink {
  attempts = 0;
  failures = 0;

  constructor(private readonly failing: (attempt: number) => boolean) {
    super();
  }

  override async write(events: readonly Event[]): Promise<void> {
    if (this.closed) throw new ClosedSinkError('flaky sink');
    this.attempts++;
    if (this.failing(this.attempts)) {
      this.failures++;
      throw new Error(`flaky sink: attempt ${this.attempts} failed`);
    }
    await super.write(events);
  }
}

/** A sink whose writes never settle until it is closed. */
export class StuckSink implements Sink {
  private closed = false;
  private rejects: Array<(e: Error) => void> = [];

  write(): Promise<void> {
    if (this.closed) return Promise.reject(new ClosedSinkError('stuck sink'));
    return new Promise((_resolve, reject) => this.rejects.push(reject));
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const reject of this.rejects) reject(new ClosedSinkError('stuck sink'));
  }
}
