import express, { type Request, type Response } from 'express';
import { once } from 'node:events';
import { DEFAULTS } from '../config/defaults';
import { parseDuration } from '../config/values';
import { expandTopics, TopicPatternError } from '../model/topic';
import type { Notifications } from '../notifications';
import { requireAdmin, type AdminAuth } from './admin-auth';
import { jsonErrors, startEventStream } from './console-api';
import { FeedError, type EventFeed, type FeedAnswer, type FeedPosition } from './event-feed';

export interface FeedRouterOptions {
  /** Credentials every request needs, as `createStatsRouter`'s. @default none */
  auth?: AdminAuth;
}

/** Events per page when `limit` is not given, and the most a page holds. */
const DEFAULT_LIMIT = 100;
const MAX_LIMIT = 1000;
/** A consumer name: what a log key and a URL carry without escaping. */
const CONSUMER_NAME = /^[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}$/;

/** What a feed request asks for, checked. */
interface FeedParams {
  cursor?: string;
  consumer?: string;
  limit: number;
  waitMs: number;
  topics?: Set<string>;
}

/** One query parameter given at most once, as a string. */
function single(req: Request, name: string): string | undefined {
  const value = req.query[name];
  if (value === undefined) return undefined;
  if (typeof value !== 'string') throw new FeedError(400, `${name} may be given once, as text`);
  return value;
}

function paramsOf(req: Request, stream: boolean): FeedParams {
  const limitText = single(req, 'limit');
  const limit = limitText === undefined ? DEFAULT_LIMIT : /^\d+$/.test(limitText) ? Number(limitText) : NaN;
  if (!(limit >= 1 && limit <= MAX_LIMIT)) throw new FeedError(400, `limit must be a whole number from 1 to ${MAX_LIMIT}, got ${JSON.stringify(limitText)}`);
  const waitText = single(req, 'wait');
  let waitMs = 0;
  if (waitText !== undefined) {
    // A bare number would be nanoseconds, as Go reads it: a unit is asked for instead.
    if (/^\d+(\.\d*)?$/.test(waitText.trim()) && waitText.trim() !== '0') throw new FeedError(400, `wait must be a duration with a unit such as 30s or 500ms, got ${JSON.stringify(waitText)}`);
    try {
      waitMs = Math.min(parseDuration(waitText, 'wait'), DEFAULTS.feed.maxWaitMs);
    } catch (err) {
      throw new FeedError(400, (err as Error).message);
    }
  }
  const consumer = single(req, 'consumer');
  if (consumer !== undefined && !CONSUMER_NAME.test(consumer)) {
    throw new FeedError(400, `consumer must be 1 to 128 letters, digits and . _ : @ - (starting with a letter or digit), got ${JSON.stringify(consumer)}`);
  }
  const raw = req.query.topic;
  const patterns = raw === undefined ? [] : Array.isArray(raw) ? raw : [raw];
  if (!patterns.every((p) => typeof p === 'string')) throw new FeedError(400, 'topic must be text, e.g. topic=/manifest/push');
  let topics: Set<string> | undefined;
  try {
    topics = patterns.length > 0 ? expandTopics(patterns as string[]) : undefined;
  } catch (err) {
    if (err instanceof TopicPatternError) throw new FeedError(400, err.message);
    throw err;
  }
  // An event stream resumes after the last id it received, which the browser sends back.
  const lastEventId = stream ? req.get('last-event-id') : undefined;
  return { cursor: lastEventId || single(req, 'cursor'), consumer, limit, waitMs, topics };
}

/** A page as JSON, the events' stored JSON put in as it is. */
function pageJson(answer: FeedAnswer): string {
  const cursor = answer.cursor === undefined ? '' : `,"cursor":${JSON.stringify(answer.cursor)}`;
  return `{"events":[${answer.events.map((e) => e.body).join(',')}]${cursor}}`;
}

/**
 * The pull feed as an Express router: `GET /` answers a page of events (`{events,
 * cursor}`), long-polling with `wait=`, or, to `Accept: text/event-stream`, a stream of
 * them that resumes after `Last-Event-ID` (see the README's "Pull feed"). Mount it where
 * readers should find it, e.g. `app.use('/events', createFeedRouter(notifications))`;
 * `createStatsRouter` mounts it at `/events`. Needs `notifications.feed.enabled`.
 */
export function createFeedRouter(notifications: Notifications, options: FeedRouterOptions = {}): express.Router {
  const feed = notifications.feed;
  if (!feed) throw new Error('createFeedRouter: the pull feed is off; set notifications.feed.enabled: true in the configuration');
  const router = express.Router();
  router.use(requireAdmin(options.auth));
  router.get('/', (req, res, next) => {
    const stream = (req.get('accept') ?? '').includes('text/event-stream');
    serve(feed, req, res, stream).catch((err: unknown) => {
      if (err instanceof FeedError) {
        if (!res.headersSent) res.status(err.status).json({ error: err.message, ...err.fields });
        return;
      }
      if (res.headersSent) {
        res.end();
        return;
      }
      next(err);
    });
  });
  router.use(jsonErrors);
  return router;
}

async function serve(feed: EventFeed, req: Request, res: Response, stream: boolean): Promise<void> {
  // The reader went away: stop waiting for it.
  const gone = new AbortController();
  res.on('close', () => gone.abort());
  const params = paramsOf(req, stream);
  const position = await feed.position(params.cursor, params.consumer);
  if (stream) return streamEvents(feed, res, params, position, gone.signal);
  const answer = await feed.read({ position, limit: params.limit, topics: params.topics }, params.waitMs, gone.signal);
  if (gone.signal.aborted) return;
  // Written as is: no ETag to compute over a page nobody asks again.
  const body = Buffer.from(pageJson(answer));
  res.writeHead(200, { 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': body.length, 'Cache-Control': 'no-store' });
  res.end(body);
}

/** Sends events as they come, as Server-Sent Events, until the reader goes away or the feed closes. */
async function streamEvents(feed: EventFeed, res: Response, params: FeedParams, start: FeedPosition, signal: AbortSignal): Promise<void> {
  startEventStream(res, 1000);
  const heartbeat = setInterval(() => res.write(': heartbeat\n\n'), DEFAULTS.feed.heartbeatMs);
  let position = start;
  try {
    while (!signal.aborted && !feed.isClosed) {
      const generation = feed.version;
      const answer = await feed.read({ position, limit: params.limit, topics: params.topics }, 0, signal);
      let text = '';
      for (const e of answer.events) text += `id: ${e.id}\nevent: ${e.topic}\ndata: ${e.body}\n\n`;
      const last = answer.events[answer.events.length - 1];
      // Past events of other topics, an id alone moves the reader's Last-Event-ID on without an event.
      if (answer.cursor !== undefined && answer.cursor !== position.cursor && answer.cursor !== last?.id) text += `id: ${answer.cursor}\n\n`;
      const moved = answer.position.seq !== position.seq;
      position = answer.position;
      if (text && !res.write(text)) await once(res, 'drain', { signal }).catch(() => undefined);
      if (!moved) await feed.changeAfter(generation, position.seq, DEFAULTS.feed.heartbeatMs, signal);
    }
  } finally {
    clearInterval(heartbeat);
    if (!res.writableEnded) res.end();
  }
}
