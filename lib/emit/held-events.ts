import type { Event } from '../model/event';
import { ClosedSinkError, type Sink } from '../deliver/sink';

/**
 * Holds the events one request produces until the request's outcome is known:
 * `commit` writes them on, `rollback` drops them. Writes after a commit pass straight
 * through (events of a response that is already streaming).
 */
export class HeldEvents implements Sink {
  private held: Event[] = [];
  private state: 'open' | 'committed' | 'rolled-back' = 'open';

  constructor(
    private readonly dst: Sink,
    private readonly onError: (err: Error) => void,
  ) {}

  async write(events: readonly Event[]): Promise<void> {
    if (this.state === 'rolled-back') throw new ClosedSinkError('held events');
    if (this.state === 'open') {
      this.held.push(...events);
      return;
    }
    await this.dst.write(events);
  }

  /**
   * Writes the held events on. The write starts synchronously, so a synchronous store
   * (SQLite) has them before the caller goes on. Returns the write, settled (never
   * rejected: failures go to `onError`) once the store below holds the events, so the
   * caller can finish the response only then; undefined when there was nothing to write.
   */
  commit(): Promise<void> | undefined {
    if (this.state !== 'open') return undefined;
    this.state = 'committed';
    const events = this.held;
    this.held = [];
    if (events.length === 0) return undefined;
    return this.dst.write(events).catch(this.onError);
  }

  rollback(): void {
    if (this.state !== 'open') return;
    this.state = 'rolled-back';
    this.held = [];
  }

  /** Events held and not yet committed. */
  get size(): number {
    return this.held.length;
  }

  /** Drops anything held; later writes fail with `ClosedSinkError`. */
  async close(): Promise<void> {
    this.held = [];
    this.state = 'rolled-back';
  }
}
