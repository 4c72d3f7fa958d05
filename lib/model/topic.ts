import type { Event, EventKind } from './event';
import { EVENT_TYPES, eventKind } from './event-kind';

/**
 * An event's topic, in containerd's shape: `/<kind>/<action>`, e.g. `/manifest/push`,
 * `/blob/mount`, `/tag/delete`, `/repository/delete`. The pull feed and endpoint filters
 * select events by topic.
 */
export type Topic = `/${string}/${string}`;

/** Every topic a Distribution-compatible registry emits, one per kind/action pair. */
export const TOPICS: readonly Topic[] = EVENT_TYPES.map((type) => `/${type.replace('.', '/')}` as Topic);

/** The topic of an event: `/` + its kind + `/` + its action. */
export function eventTopic(event: Pick<Event, 'target' | 'action'> & { kind?: EventKind }): Topic {
  return `/${eventKind(event)}/${event.action}`;
}

/** A topic pattern is not one: it names no topic, or is not written as a path. */
export class TopicPatternError extends Error {
  override readonly name = 'TopicPatternError';
  constructor(
    readonly pattern: string,
    reason: string,
  ) {
    super(`topic ${JSON.stringify(pattern)}: ${reason}; topics are ${TOPICS.join(', ')}`);
  }
}

/** Whether one segment pattern (`*` anywhere in it matches any run of characters) matches a segment. */
function segmentMatches(pattern: string, segment: string): boolean {
  if (!pattern.includes('*')) return pattern === segment;
  const parts = pattern.split('*');
  if (!segment.startsWith(parts[0]) || !segment.endsWith(parts[parts.length - 1])) return false;
  let at = parts[0].length;
  for (const part of parts.slice(1, -1)) {
    const found = segment.indexOf(part, at);
    if (found < 0) return false;
    at = found + part.length;
  }
  return at <= segment.length - parts[parts.length - 1].length;
}

/** Whether a pattern (`/manifest/*`, `/**`) matches a topic, segment by segment. */
function patternMatches(pattern: string, topic: string): boolean {
  const want = pattern.split('/').slice(1);
  const have = topic.split('/').slice(1);
  for (let i = 0; i < want.length; i++) {
    if (want[i] === '**') return true;
    if (i >= have.length || !segmentMatches(want[i], have[i])) return false;
  }
  return want.length === have.length;
}

/**
 * The topics a list of patterns selects. A pattern is a topic (`/manifest/push`) or one
 * with `*` standing for any part of a segment (`/manifest/*`, or `*` as the kind to
 * select an action of every kind) and `**` for
 * every segment after it (`/**`). A pattern that is not a path, or selects no topic (a
 * typo such as `/manifests/push`), throws TopicPatternError naming it and the topics.
 */
export function expandTopics(patterns: readonly string[]): Set<Topic> {
  const selected = new Set<Topic>();
  for (const pattern of patterns) {
    if (!pattern.startsWith('/') || pattern.split('/').length < 2) throw new TopicPatternError(pattern, 'must be a path such as /manifest/push');
    const matched = TOPICS.filter((t) => patternMatches(pattern, t));
    if (matched.length === 0) throw new TopicPatternError(pattern, 'matches no topic');
    for (const t of matched) selected.add(t);
  }
  return selected;
}

/** A test of events against topic patterns (checked at once: a bad pattern throws here). */
export function topicMatcher(patterns: readonly string[]): (event: Event) => boolean {
  const topics = expandTopics(patterns);
  return (event) => topics.has(eventTopic(event));
}
