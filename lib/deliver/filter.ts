import { eventKind } from '../model/event-kind';
import { topicMatcher } from '../model/topic';
import type { Event, EventKind } from '../model/event';
import { globMatcher } from './glob';
import { ClosedSinkError, writeTo, type Sink } from './sink';

/** Lists an event is matched against; a list that is absent or empty is not consulted. */
export interface MatchRules {
  /** Target media types, exactly. */
  mediaTypes?: readonly string[];
  /** Actions: push, pull, mount, delete. */
  actions?: readonly string[];
  /** Repository name globs (`library/*`, `team/**`). */
  repositories?: readonly string[];
  /** Tag globs (`v*`, `release-?`); an event without a tag matches none. */
  tags?: readonly string[];
  /** Target kinds: manifest, blob, tag, repository. */
  kinds?: readonly EventKind[];
  /** Topics or topic patterns: `/manifest/push`, `/manifest/*`, `/**`. */
  topics?: readonly string[];
}

export interface FilterOptions {
  /**
   * Events that match any one list are dropped: Distribution's `ignore.mediatypes`,
   * `ignore.actions` and legacy `ignoredmediatypes`, plus repositories, tags and kinds.
   */
  ignore?: MatchRules;
  /** When given, an event passes only if it matches every list given here. */
  include?: MatchRules;
}

type Test = (event: Event) => boolean;

function tests(rules: MatchRules = {}): Test[] {
  const out: Test[] = [];
  if (rules.mediaTypes?.length) {
    const set = new Set(rules.mediaTypes);
    out.push((e) => e.target.mediaType !== undefined && set.has(e.target.mediaType));
  }
  if (rules.actions?.length) {
    const set = new Set<string>(rules.actions);
    out.push((e) => set.has(e.action));
  }
  if (rules.repositories?.length) {
    const match = globMatcher(rules.repositories);
    out.push((e) => e.target.repository !== undefined && match(e.target.repository));
  }
  if (rules.tags?.length) {
    const match = globMatcher(rules.tags);
    out.push((e) => e.target.tag !== undefined && match(e.target.tag));
  }
  if (rules.kinds?.length) {
    const set = new Set<string>(rules.kinds);
    out.push((e) => set.has(eventKind(e)));
  }
  if (rules.topics?.length) out.push(topicMatcher(rules.topics));
  return out;
}

/**
 * Drops the events an endpoint does not want and passes the rest on. Ignore lists apply
 * independently: an event matching any of them is dropped (as Distribution 3.1; 2.x
 * skipped the action list when no media type was listed).
 */
export class Filter implements Sink {
  private readonly ignored: Test[];
  private readonly included: Test[];
  /** No list to consult: every event passes, as the very array it came in. */
  private readonly passAll: boolean;
  private closed?: Promise<void>;

  constructor(
    private readonly dst: Sink,
    options: FilterOptions = {},
  ) {
    this.ignored = tests(options.ignore);
    this.included = tests(options.include);
    this.passAll = this.ignored.length === 0 && this.included.length === 0;
  }

  /** Whether an event passes this filter. */
  accepts(event: Event): boolean {
    return !this.ignored.some((t) => t(event)) && this.included.every((t) => t(event));
  }

  write(events: readonly Event[]): Promise<void> {
    if (this.closed) return Promise.reject(new ClosedSinkError('filter'));
    if (this.passAll && events.length > 0) return writeTo(this.dst, events);
    return this.writeKept(events);
  }

  private async writeKept(events: readonly Event[]): Promise<void> {
    const kept = events.filter((e) => this.accepts(e));
    if (kept.length > 0) await this.dst.write(kept);
  }

  close(): Promise<void> {
    this.closed ??= this.dst.close();
    return this.closed;
  }
}
