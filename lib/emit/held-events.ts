import type { Event } from '../model/event';
import { ClosedSinkError, type Sink } from '../deliver/sink';
import { refusableAppends, type AppendRefusals } from '../stores/spooling-store';

/**
 * Holds the events one request produces while its storage work goes on, and writes them
 * on, in the order they came, at `commit` (the response starts, or the client goes
 * away). Every event held is of an operation that took effect, so none is ever dropped:
 * a later failure of the request does not undo the operation. Writes after the commit
 * pass straight through (an operation that ends after the response started or the client
 * left).
 */
export class HeldEvents implements Sink {
  private held: Event[] = [];
  private state: 'open' | 'committed' | 'closed' = 'open';

  constructor(
    private readonly dst: Sink,
    private readonly onError: (err: Error) => void,
  ) {}

  async write(events: readonly Event[]): Promise<void> {
    if (this.state === 'closed') throw new ClosedSinkError('held events');
    if (this.state === 'open') {
      this.held.push(...events);
      return;
    }
    await this.dst.write(events);
  }

  /**
   * Writes the held events on. The write starts synchronously, so a synchronous store
   * (SQLite) has them before the caller goes on. Returns the write, settled (never
   * rejected: failures go to `onError`) once the stores below hold the events, so the
   * caller can finish the response only then; undefined when there was nothing to write.
   *
   * With `refusable`, a store that cannot take the events in time refuses them instead
   * of spooling them (`queue.onstoreerror: fail`), and the write resolves to the refusal:
   * the caller then fails the request so that the client retries.
   */
  commit(options: { refusable?: boolean } = {}): Promise<Error | undefined> | undefined {
    if (this.state !== 'open') return undefined;
    this.state = 'committed';
    const events = this.held;
    this.held = [];
    if (events.length === 0) return undefined;
    if (!options.refusable) {
      return this.dst.write(events).then(
        () => undefined,
        (err: Error) => void this.onError(err),
      );
    }
    const refusals: AppendRefusals = {};
    return refusableAppends(refusals, events, () => this.dst.write(events)).then(
      () => refusals.refused,
      (err: Error) => {
        this.onError(err);
        return refusals.refused;
      },
    );
  }

  /** Events held and not yet committed. */
  get size(): number {
    return this.held.length;
  }

  /** Drops anything held; later writes fail with `ClosedSinkError`. */
  async close(): Promise<void> {
    this.held = [];
    this.state = 'closed';
  }
}
