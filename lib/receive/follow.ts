import type { Event } from '../model/event';

/** What `followEvents` reads and how. */
export interface FollowOptions {
  /** The feed's URL, e.g. `http://registry.internal:5001/events`. */
  url: string;
  /**
   * A name the server keeps this reader's position under: a follower restarted with the
   * same name continues after the last page it finished. @default none: starts at `cursor`
   */
  consumer?: string;
  /** Topics or patterns (`/manifest/push`, `/manifest/*`); events of other topics are skipped by the server. @default every topic */
  topics?: readonly string[];
  /** Start after this cursor (an event id). @default the consumer's position, else the oldest retained event */
  cursor?: string;
  /** Events per page, 1 to 1000. @default 500 */
  limit?: number;
  /** How long one request waits for an event when there is none (long poll), in ms. @default 30000 */
  waitMs?: number;
  /** Headers sent with every request, e.g. `{ authorization: 'Bearer …' }`. */
  headers?: Record<string, string>;
  /** Stops following; the iteration then ends without an error. */
  signal?: AbortSignal;
  /** First wait before reconnecting after a failure, in ms; doubles up to 30 s. @default 250 */
  retryMs?: number;
  /** Told of each failure that is retried (a refused connection, a 5xx). @default silent */
  onRetry?(err: Error, waitMs: number): void;
}

/**
 * The feed no longer has the events after this cursor: they left the retention window
 * before this reader got to them. `oldest` is the oldest cursor the feed still has.
 */
export class FeedGoneError extends Error {
  override readonly name = 'FeedGoneError';
  constructor(
    readonly cursor: string,
    readonly oldest: string | undefined,
    message: string,
  ) {
    super(`cursor ${cursor} is older than the feed keeps (${message}); the oldest cursor is ${oldest ?? 'unknown'}: events in between are lost to this reader`);
  }
}

/** The feed refused a request for a reason a retry will not fix (a bad topic, bad credentials). */
export class FeedRequestError extends Error {
  override readonly name = 'FeedRequestError';
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(`feed answered ${status}: ${message}`);
  }
}

/** One page as the feed answers it. */
interface FeedPage {
  events: Event[];
  cursor?: string;
}

const MAX_RETRY_MS = 30_000;

/** The request URL of the page after `cursor`. */
function pageUrl(options: FollowOptions, cursor: string | undefined): string {
  const url = new URL(options.url);
  if (cursor !== undefined) url.searchParams.set('cursor', cursor);
  if (options.consumer !== undefined) url.searchParams.set('consumer', options.consumer);
  url.searchParams.set('limit', String(options.limit ?? 500));
  url.searchParams.set('wait', `${options.waitMs ?? 30_000}ms`);
  for (const topic of options.topics ?? []) url.searchParams.append('topic', topic);
  return url.toString();
}

/** Reads an error answer's message (`{"error": …}`), or its start. */
async function answerText(res: Response): Promise<{ message: string; body: Record<string, unknown> }> {
  const text = await res.text().catch(() => '');
  try {
    const body = JSON.parse(text) as Record<string, unknown>;
    return { message: typeof body.error === 'string' ? body.error : text.slice(0, 200), body };
  } catch {
    return { message: text.slice(0, 200) || res.statusText, body: {} };
  }
}

/** Waits `ms`, or less when the signal aborts. */
function pause(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}

/** Fetches one page; throws FeedGoneError / FeedRequestError for answers a retry will not change. */
async function fetchPage(options: FollowOptions, cursor: string | undefined): Promise<FeedPage> {
  // A request that hears nothing for the long poll and a margin is given up and retried.
  const timeout = AbortSignal.timeout((options.waitMs ?? 30_000) + 15_000);
  const signal = options.signal ? AbortSignal.any([options.signal, timeout]) : timeout;
  const res = await fetch(pageUrl(options, cursor), { headers: { accept: 'application/json', ...options.headers }, signal });
  if (res.status === 410) {
    const { message, body } = await answerText(res);
    throw new FeedGoneError(cursor ?? '', typeof body.oldest === 'string' ? body.oldest : undefined, message);
  }
  if (res.status >= 400 && res.status < 500 && res.status !== 408 && res.status !== 429) {
    throw new FeedRequestError(res.status, (await answerText(res)).message);
  }
  if (!res.ok) throw new Error(`feed answered ${res.status}: ${(await answerText(res)).message}`);
  const page = (await res.json()) as FeedPage;
  if (!Array.isArray(page.events)) throw new Error('feed answered without an "events" list');
  return page;
}

/**
 * Follows a registry's event feed: yields every event, in order, page by page, waiting
 * (long poll) when there is none. Reconnects by itself after a failure, resuming after
 * the last page it finished, so an event is never skipped; an event whose page was cut
 * short may come again (at-least-once: drop repeats by `event.id`). With `consumer`,
 * the server keeps the position: each request acknowledges the page before it.
 *
 *     for await (const event of followEvents({ url, consumer: 'scanner', topics: ['/manifest/push'] })) { … }
 *
 * Ends when `signal` aborts; throws FeedGoneError when the reader fell behind the
 * retention window, FeedRequestError when the feed refuses the request.
 */
export async function* followEvents(options: FollowOptions): AsyncGenerator<Event, void, undefined> {
  const limit = options.limit ?? 500;
  if (!Number.isInteger(limit) || limit < 1 || limit > 1000) throw new RangeError(`limit must be a whole number from 1 to 1000, got ${limit}`);
  new URL(options.url); // throws naming a bad URL before anything is sent
  let cursor = options.cursor;
  let retryMs = options.retryMs ?? 250;
  while (!options.signal?.aborted) {
    let page: FeedPage;
    try {
      page = await fetchPage(options, cursor);
    } catch (err) {
      if (options.signal?.aborted) return;
      if (err instanceof FeedGoneError || err instanceof FeedRequestError) throw err;
      options.onRetry?.(err as Error, retryMs);
      await pause(retryMs, options.signal);
      retryMs = Math.min(retryMs * 2, MAX_RETRY_MS);
      continue;
    }
    retryMs = options.retryMs ?? 250;
    for (const event of page.events) yield event;
    // Only once the reader has taken every event of the page does the cursor move on.
    if (page.cursor !== undefined) cursor = page.cursor;
  }
}
