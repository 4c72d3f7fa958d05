import type { Event } from '../model/event';
import { ClosedSinkError, type Sink } from '../deliver/sink';
import { refusableAppends, type AppendRefusals } from '../stores/spooling-store';

/** What `write` answers while events are held: they are this sink's at once. */
const HELD: Promise<void> = Promise.resolve();
const stored = (): undefined => undefined;

/**
 * Holds the events one request produces while its storage work goes on, and writes them
 * on, in the order they came, at `commit` (the response starts, or the client goes
 * away). Every event held is of an operation that took effect, so none is ever dropped:
 * a later failure of the request does not undo the operation. Writes after the commit
 * pass straight through (an operation that ends after the response started or the client
 * left).
 */
export class HeldEvents implements Sink {
  /** Undefined until the first event: most requests hold one write, kept as it came. */
  private held?: Event[];
  private state: 'open' | 'committed' | 'closed' = 'open';

  constructor(
    private readonly dst: Sink,
    private readonly onError: (err: Error) => void,
  ) {}

  // Not async: a request's events are held with no promise made for them.
  write(events: readonly Event[]): Promise<void> {
    if (this.state === 'open') {
      if (this.held === undefined) this.held = events.slice();
      else for (const event of events) this.held.push(event);
      return HELD;
    }
    if (this.state === 'closed') return Promise.reject(new ClosedSinkError('held events'));
    return this.dst.write(events);
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
  commit(options?: { refusable?: boolean }): Promise<Error | undefined> | undefined {
    if (this.state !== 'open') return undefined;
    this.state = 'committed';
    const events = this.held;
    this.held = undefined;
    if (events === undefined || events.length === 0) return undefined;
    if (!options?.refusable) {
      return this.dst.write(events).then(stored, (err: Error) => void this.onError(err));
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
    return this.held?.length ?? 0;
  }

  /** Drops anything held; later writes fail with `ClosedSinkError`. */
  async close(): Promise<void> {
    this.held = undefined;
    this.state = 'closed';
  }
}
