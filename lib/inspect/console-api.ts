import { EventEmitter } from 'node:events';
import express, { type NextFunction, type Request, type Response } from 'express';
import type { Notifications } from '../notifications';
import type { Endpoint } from '../deliver/endpoint';
import { lastAttempt } from '../deliver/http-sink';
import { Bridge, urlBuilderFor } from '../emit/bridge';
import { EVENT_ACTIONS, newEventId, type Event, type EventAction } from '../model/event';
import { MANIFEST_MEDIA_TYPES } from '../model/manifest';
import { BadCursorError, EVENT_STATES, type AttemptRecord, type EventState, type LoggedEvent } from '../stores/delivery-log';
import { redactHeaders } from './debug-vars';
import { sameOriginJson } from './admin-auth';

/** The repository of test events: a receiver can tell them from the registry's own. */
export const TEST_REPOSITORY = 'notifications-test';

/** Between two `endpoints` snapshots on the stream, at most, in ms. */
const SNAPSHOT_EVERY_MS = 2000; // 2s
/** Between two comments that keep an idle stream open through proxies, in ms. */
const HEARTBEAT_EVERY_MS = 15_000; // 15s
/** After an attempt, the snapshot that shows its counters waits this long for more, in ms. */
const SNAPSHOT_SETTLE_MS = 250;
/** Largest page of attempts or events. */
const MAX_LIMIT = 500;
/** Most events one time-range replay queues. */
const MAX_RANGE_REPLAY = 100_000;

/** A request the API refuses, with the status it answers. */
class ApiError extends Error {
  override readonly name = 'ApiError';
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/** Runs an async route, handing what it throws to the error handler. */
const route =
  (handler: (req: Request, res: Response) => Promise<unknown>) =>
  (req: Request, res: Response, next: NextFunction): void => {
    handler(req, res).catch(next);
  };

/**
 * Answers with a Server-Sent Events stream: its headers (no caching, no buffering by a
 * proxy in front) and how long a client waits before it reconnects, in ms.
 */
export function startEventStream(res: Response, retryMs: number): void {
  res.writeHead(200, {
    'Content-Type': 'text/event-stream; charset=utf-8',
    'Cache-Control': 'no-cache, no-transform',
    Connection: 'keep-alive',
    'X-Accel-Buffering': 'no',
  });
  res.write(`retry: ${retryMs}\n\n`);
}

/**
 * The error handler of the stats routes: a JSON `{ "error": … }` with the status of the
 * refusal (a malformed JSON body is 400), never a stack trace or a file path.
 */
export function jsonErrors(err: unknown, _req: Request, res: Response, next: NextFunction): void {
  if (res.headersSent) return next(err);
  const e = err as Error & { status?: number; statusCode?: number; type?: string };
  if (err instanceof ApiError) {
    res.status(err.status).json({ error: err.message });
  } else if (err instanceof BadCursorError) {
    res.status(400).json({ error: err.message });
  } else if (e.type === 'entity.parse.failed') {
    res.status(400).json({ error: 'malformed JSON body' });
  } else if (typeof (e.status ?? e.statusCode) === 'number' && (e.status ?? e.statusCode)! < 500) {
    res.status((e.status ?? e.statusCode)!).json({ error: e.message });
  } else {
    res.status(500).json({ error: `internal error: ${e.name ?? 'Error'}: ${e.message}` });
  }
}

/** One attempt as the API shows it. */
function attemptJson(a: AttemptRecord) {
  return {
    id: a.id,
    time: a.time,
    endpoint: a.endpoint,
    eventIds: a.eventIds,
    attempt: a.attempt,
    status: a.status,
    error: a.error,
    latencyMs: a.latencyMs,
    response: a.response,
    test: a.test,
  };
}

/** One row of an event search. */
function eventRow(e: LoggedEvent) {
  const t = e.event.target;
  return {
    id: e.event.id,
    timestamp: e.event.timestamp,
    action: e.event.action,
    repository: t.repository ?? null,
    digest: t.digest ?? null,
    tag: t.tag ?? null,
    mediaType: t.mediaType ?? null,
    endpoint: e.endpoint,
    state: e.state,
    attempts: e.attempts,
  };
}

/** A page size from `?limit=`: 1 to 500, 50 when absent. */
function limitOf(req: Request): number {
  const raw = req.query.limit;
  if (raw === undefined) return 50;
  const n = Number(raw);
  if (typeof raw !== 'string' || !Number.isInteger(n) || n < 1 || n > MAX_LIMIT) {
    throw new ApiError(400, `limit must be a whole number from 1 to ${MAX_LIMIT}, got ${JSON.stringify(raw)}`);
  }
  return n;
}

/** A query parameter given once, or undefined; a repeated one is refused. */
function param(req: Request, name: string): string | undefined {
  const v = req.query[name];
  if (v === undefined || v === '') return undefined;
  if (typeof v !== 'string') throw new ApiError(400, `?${name}= must be given once`);
  return v;
}

/** An ISO 8601 time, in ms since the epoch. */
function timeOf(value: unknown, name: string): number {
  const ms = typeof value === 'string' ? Date.parse(value) : NaN;
  if (Number.isNaN(ms)) throw new ApiError(400, `${name} must be an ISO 8601 time such as 2026-11-22T17:00:00Z, got ${JSON.stringify(value)}`);
  return ms;
}

/** A small manifest for test events, the same bytes every time. */
const TEST_MANIFEST = Buffer.from(
  JSON.stringify({
    schemaVersion: 2,
    mediaType: MANIFEST_MEDIA_TYPES.ociManifest,
    config: { mediaType: 'application/vnd.oci.empty.v1+json', digest: 'sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a', size: 2 },
    layers: [],
    annotations: { 'org.opencontainers.image.description': 'a test event from the registry notifications console' },
  }),
);

/** A test event of this action, as the Bridge builds the registry's own, in repository `notifications-test`. */
async function testEvent(notifications: Notifications, action: EventAction, req: Request): Promise<Event> {
  const events: Event[] = [];
  const bridge = new Bridge({
    sink: { write: async (e) => void events.push(...e), close: async () => undefined },
    urls: urlBuilderFor(''),
    source: notifications.source,
    actor: {},
    request: { id: newEventId(), addr: req.ip ?? '', host: req.get('host') ?? '', method: req.method, useragent: req.get('user-agent') ?? '' },
  });
  const manifest = { mediaType: MANIFEST_MEDIA_TYPES.ociManifest, payload: TEST_MANIFEST };
  const blob = { mediaType: 'application/octet-stream', size: 2, digest: 'sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a' };
  if (action === 'push') await bridge.manifestPushed(TEST_REPOSITORY, manifest, { tag: 'test' });
  else if (action === 'pull') await bridge.manifestPulled(TEST_REPOSITORY, manifest, { tag: 'test' });
  else if (action === 'mount') await bridge.blobMounted(TEST_REPOSITORY, blob, `${TEST_REPOSITORY}-source`);
  else await bridge.tagDeleted(TEST_REPOSITORY, 'test');
  return events[0];
}

/**
 * The console's JSON API and its event stream, under `/debug/notifications/api` (see the
 * README's "Operator console"): endpoints with their stats, attempts, event search, one
 * event with its attempts, and the actions (pause, resume, a test event, replay). Routes
 * that change something take JSON from this origin only (`sameOriginJson`).
 */
export function createConsoleApi(notifications: Notifications): express.Router {
  const router = express.Router();
  const log = notifications.deliveryLog;
  /** Told when an action changed an endpoint: the streams send a snapshot. */
  const changes = new EventEmitter();
  const names = () => notifications.endpoints.map((e) => e.name);
  const endpointNamed = (name: string): Endpoint => {
    const found = notifications.endpoints.find((e) => e.name === name);
    if (!found) throw new ApiError(404, `no endpoint named ${JSON.stringify(name)}; endpoints: ${names().join(', ') || 'none'}`);
    return found;
  };

  const endpointJson = async (e: Endpoint) => {
    const counters = e.stats.snapshot();
    const age = e.stats.oldestPendingAgeSeconds();
    return {
      name: e.name,
      url: e.shownUrl,
      headers: redactHeaders(e.config.headers),
      state: counters.State,
      paused: counters.State === 'paused',
      control: e.control ?? null,
      pending: counters.Pending,
      oldestPendingAgeSeconds: age === null ? null : Math.round(age * 10) / 10,
      counters,
      deadLetters: await e.deadLetters.count().catch(() => null),
      recent: e.stats.recent(),
    };
  };
  const snapshot = async () => ({
    endpoints: await Promise.all(notifications.endpoints.map(endpointJson)),
    log: { store: log.log.description, dropped: log.dropped },
  });

  router.get('/endpoints', route(async (_req, res) => {
    res.json(await snapshot());
  }));

  router.get('/endpoints/:name/attempts', route(async (req, res) => {
    const endpoint = endpointNamed(String(req.params.name));
    const page = await log.attempts(endpoint.name, { cursor: param(req, 'cursor'), limit: limitOf(req) });
    res.json({ attempts: page.items.map(attemptJson), next: page.next });
  }));

  router.get('/events', route(async (req, res) => {
    const endpoint = param(req, 'endpoint');
    const state = param(req, 'state');
    const action = param(req, 'action');
    if (state !== undefined && !EVENT_STATES.includes(state as EventState)) {
      throw new ApiError(400, `state must be one of ${EVENT_STATES.join(', ')}, got ${JSON.stringify(state)}`);
    }
    if (action !== undefined && !EVENT_ACTIONS.includes(action as EventAction)) {
      throw new ApiError(400, `action must be one of ${EVENT_ACTIONS.join(', ')}, got ${JSON.stringify(action)}`);
    }
    const from = param(req, 'from');
    const to = param(req, 'to');
    const page = await log.search({
      endpoints: endpoint === undefined ? names() : [endpointNamed(endpoint).name],
      id: param(req, 'id'),
      repository: param(req, 'repository'),
      digest: param(req, 'digest'),
      tag: param(req, 'tag'),
      action,
      state: state as EventState | undefined,
      fromMs: from === undefined ? undefined : timeOf(from, 'from'),
      toMs: to === undefined ? undefined : timeOf(to, 'to'),
      cursor: param(req, 'cursor'),
      limit: limitOf(req),
    });
    res.json({ events: page.items.map(eventRow), next: page.next });
  }));

  router.get('/events/:id', route(async (req, res) => {
    const id = String(req.params.id);
    const found = await log.event(id, names());
    if (found.length === 0) throw new ApiError(404, `no event ${JSON.stringify(id)} in the event log (kept for ${notifications.config.log.retentionMs / 1000}s)`);
    res.json({
      event: found[0].event,
      deliveries: found.map((e) => ({ endpoint: e.endpoint, state: e.state, attempts: e.attemptList.map(attemptJson) })),
    });
  }));

  // Everything below changes something: JSON from this origin only.
  const mutating = [sameOriginJson(), express.json({ limit: '1mb' })];
  const bodyOf = (req: Request): Record<string, unknown> => {
    const body: unknown = req.body;
    if (body === undefined) return {};
    if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new ApiError(400, 'the body must be a JSON object');
    return body as Record<string, unknown>;
  };

  router.post('/endpoints/:name/pause', ...mutating, route(async (req, res) => {
    const endpoint = endpointNamed(String(req.params.name));
    const { reason } = bodyOf(req);
    if (reason !== undefined && typeof reason !== 'string') throw new ApiError(400, 'body field "reason" must be a string');
    await endpoint.pause(reason || undefined);
    changes.emit('change');
    res.json({ endpoint: endpoint.name, state: endpoint.stats.counters.State, control: endpoint.control ?? null });
  }));

  router.post('/endpoints/:name/resume', ...mutating, route(async (req, res) => {
    const endpoint = endpointNamed(String(req.params.name));
    bodyOf(req);
    await endpoint.resume();
    changes.emit('change');
    res.json({ endpoint: endpoint.name, state: endpoint.stats.counters.State, control: endpoint.control ?? null });
  }));

  router.post('/endpoints/:name/test', ...mutating, route(async (req, res) => {
    const endpoint = endpointNamed(String(req.params.name));
    const { action = 'push' } = bodyOf(req);
    if (!EVENT_ACTIONS.includes(action as EventAction)) throw new ApiError(400, `action must be one of ${EVENT_ACTIONS.join(', ')}, got ${JSON.stringify(action)}`);
    const events = [await testEvent(notifications, action as EventAction, req)];
    const started = performance.now();
    let failure: Error | undefined;
    try {
      await endpoint.deliverNow(events);
    } catch (err) {
      failure = err as Error;
    }
    // Straight through the HTTP sink: no queue, no event log; the attempt is logged, marked a test.
    const detail = lastAttempt(events);
    const status = detail?.status ?? (failure as { status?: number } | undefined)?.status ?? null;
    const attempt = log.attempt({
      endpoint: endpoint.name,
      eventIds: events.map((e) => e.id),
      attempt: 1,
      status,
      error: failure && status === null ? failure.message : null,
      latencyMs: Math.round((detail?.durationMs ?? performance.now() - started) * 10) / 10,
      response: detail?.response ?? null,
      test: true,
    });
    const { kind: _kind, ...event } = events[0]; // the kind is ours, not on the wire
    res.json({ endpoint: endpoint.name, ok: failure === undefined, attempt: attemptJson(attempt), event });
  }));

  router.post('/endpoints/:name/replay', ...mutating, route(async (req, res) => {
    const endpoint = endpointNamed(String(req.params.name));
    const body = bodyOf(req);
    const given = ['ids', 'deadLetters', 'from'].filter((k) => body[k] !== undefined);
    if (given.length !== 1) {
      throw new ApiError(400, 'the body takes one of {"ids": [event ids]}, {"deadLetters": true} or {"from": ISO time, "to": ISO time}');
    }
    let events: Event[];
    if (body.deadLetters !== undefined) {
      if (body.deadLetters !== true) throw new ApiError(400, 'body field "deadLetters" must be true');
      events = await endpoint.replayDeadLetters();
    } else if (body.ids !== undefined) {
      const ids = body.ids;
      if (!Array.isArray(ids) || ids.length === 0 || !ids.every((id) => typeof id === 'string')) {
        throw new ApiError(400, 'body field "ids" must be a list of event ids');
      }
      // Dead letters among them leave the dead-letter store; the others come from the event log.
      const fromDeadLetters = await endpoint.replayDeadLetters(ids as string[]);
      const done = new Set(fromDeadLetters.map((e) => e.id));
      const logged: Event[] = [];
      for (const id of new Set(ids as string[])) {
        if (done.has(id)) continue;
        const [found] = await log.event(id, [endpoint.name]);
        if (found) logged.push(found.event);
      }
      const missing = (ids as string[]).filter((id) => !done.has(id) && !logged.some((e) => e.id === id));
      if (fromDeadLetters.length === 0 && logged.length === 0) {
        throw new ApiError(404, `no event with these ids in ${endpoint.name}'s event log or dead letters: ${missing.join(', ')}`);
      }
      if (logged.length > 0) await endpoint.queue.write(logged);
      events = [...fromDeadLetters, ...logged];
      changes.emit('change');
      res.json({ endpoint: endpoint.name, replayed: events.length, ids: events.map((e) => e.id), missing });
      return;
    } else {
      const fromMs = timeOf(body.from, 'body field "from"');
      const toMs = body.to === undefined ? Date.now() : timeOf(body.to, 'body field "to"');
      if (toMs <= fromMs) throw new ApiError(400, '"to" must be after "from"');
      events = [];
      let cursor: string | undefined;
      do {
        const page = await log.search({ endpoints: [endpoint.name], fromMs, toMs, cursor, limit: MAX_LIMIT });
        events.push(...page.items.map((e) => e.event));
        cursor = page.next ?? undefined;
      } while (cursor && events.length < MAX_RANGE_REPLAY);
      events.reverse(); // oldest first, as they were queued
      if (events.length > 0) await endpoint.queue.write(events);
    }
    changes.emit('change');
    res.json({ endpoint: endpoint.name, replayed: events.length, ids: events.map((e) => e.id) });
  }));

  router.get('/stream', (req, res) => {
    startEventStream(res, 2000);
    const send = (event: string, data: unknown) => res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
    let sending = false;
    let again = false;
    let settle: NodeJS.Timeout | undefined;
    const sendSnapshot = () => {
      clearTimeout(settle);
      settle = undefined;
      if (sending) {
        again = true;
        return;
      }
      sending = true;
      snapshot()
        .then((s) => {
          if (!res.writableEnded) send('endpoints', s);
        })
        .catch(() => undefined)
        .finally(() => {
          sending = false;
          if (again) {
            again = false;
            sendSnapshot();
          }
        });
    };
    sendSnapshot();
    const every = setInterval(sendSnapshot, SNAPSHOT_EVERY_MS);
    const heartbeat = setInterval(() => res.write(': heartbeat\n\n'), HEARTBEAT_EVERY_MS);
    const onChange = () => sendSnapshot();
    changes.on('change', onChange);
    const stopAttempts = log.onAttempt((a) => {
      send('attempt', attemptJson(a));
      settle ??= setTimeout(sendSnapshot, SNAPSHOT_SETTLE_MS);
    });
    const end = () => {
      clearInterval(every);
      clearInterval(heartbeat);
      clearTimeout(settle);
      changes.off('change', onChange);
      stopAttempts();
    };
    req.on('close', end);
    res.on('close', end);
  });

  return router;
}
