import express from 'express';
import type { Notifications } from '../notifications';
import { createConsolePage } from './console-page';
import { requireAdmin, sameOriginJson, type AdminAuth } from './admin-auth';
import { createConsoleApi, jsonErrors } from './console-api';
import { createFeedRouter } from './feed-router';

export interface StatsRouterOptions {
  /**
   * Credentials every route requires (page, assets, API, stream, `/debug/vars`,
   * `/metrics`, dead letters): `{ htpasswd: '/path/to/htpasswd' }` (bcrypt entries, HTTP
   * Basic) or `{ token: 'secret' }` (`Authorization: Bearer secret`, or HTTP Basic with
   * the token as password). Without it the routes are open to whoever reaches them.
   * @default none
   */
  auth?: AdminAuth;
}

/**
 * Routes that show the pipeline's stats, for a registry's debug address:
 * `GET /debug/vars` (Distribution's expvar shape), `GET /metrics` (Prometheus, from the
 * registry given to `createNotifications`), `GET /debug/notifications` (a page), and the
 * dead letters: `GET /debug/notifications/deadletters?endpoint=NAME&limit=N` and
 * `POST /debug/notifications/deadletters/replay?endpoint=NAME` with `{"ids": [...]}`
 * (or `{}` to replay them all), and the console's JSON API and event stream under
 * `/debug/notifications/api`. Routes that change something take only JSON from this
 * origin. With `notifications.feed.enabled`, also the pull feed at `GET /events`.
 * Serve them on an address only operators reach, with `auth` where others can.
 */
export function createStatsRouter(notifications: Notifications, options: StatsRouterOptions = {}): express.Router {
  const router = express.Router();
  // Only these paths: the router may be mounted on the registry's own app.
  const paths = ['/debug/vars', '/metrics', '/debug/notifications'];
  if (notifications.feed) paths.push('/events');
  router.use(paths, requireAdmin(options.auth));
  if (notifications.feed) router.use('/events', createFeedRouter(notifications));

  router.get('/debug/vars', (_req, res) => {
    res.json({ registry: { notifications: { endpoints: notifications.debugVars() } } });
  });

  router.get('/metrics', async (_req, res, next) => {
    try {
      const body = await notifications.metricsRegistry.metrics();
      res.type(notifications.metricsRegistry.contentType).send(body);
    } catch (err) {
      next(err);
    }
  });

  /** The endpoint a dead-letter request names; the only one when there is one. */
  const endpointOf = (req: express.Request, res: express.Response) => {
    const name = typeof req.query.endpoint === 'string' ? req.query.endpoint : undefined;
    const all = notifications.endpoints;
    if (name === undefined) {
      if (all.length === 1) return all[0];
      res.status(400).json({ error: `missing ?endpoint=; endpoints: ${all.map((e) => e.name).join(', ') || 'none'}` });
      return undefined;
    }
    try {
      return notifications.endpoint(name);
    } catch (err) {
      res.status(404).json({ error: (err as Error).message });
      return undefined;
    }
  };

  router.get('/debug/notifications/deadletters', async (req, res, next) => {
    const endpoint = endpointOf(req, res);
    if (!endpoint) return;
    const limit = req.query.limit === undefined ? 100 : Number(req.query.limit);
    if (!Number.isInteger(limit) || limit < 1) {
      res.status(400).json({ error: `limit must be a whole number of at least 1, got ${JSON.stringify(req.query.limit)}` });
      return;
    }
    try {
      const [count, deadLetters] = await Promise.all([endpoint.deadLetters.count(), endpoint.listDeadLetters(limit)]);
      res.json({ endpoint: endpoint.name, count, deadLetters });
    } catch (err) {
      next(err);
    }
  });

  // A body that is not JSON, or a request from another origin, is refused: no web page can make this happen.
  router.post('/debug/notifications/deadletters/replay', sameOriginJson(), express.json({ limit: '1mb' }), async (req, res, next) => {
    const endpoint = endpointOf(req, res);
    if (!endpoint) return;
    if (typeof req.body !== 'object' || req.body === null || Array.isArray(req.body)) {
      res.status(400).json({ error: 'the body must be a JSON object: {"ids": [...]}, or {} to replay every dead letter' });
      return;
    }
    const ids: unknown = req.body.ids;
    if (ids !== undefined && !(Array.isArray(ids) && ids.every((id) => typeof id === 'string'))) {
      res.status(400).json({ error: 'body field "ids" must be a list of event ids, or absent to replay every dead letter' });
      return;
    }
    try {
      const events = await endpoint.replayDeadLetters(ids as string[] | undefined);
      res.json({ endpoint: endpoint.name, replayed: events.length, ids: events.map((e) => e.id) });
    } catch (err) {
      next(err);
    }
  });

  router.use('/debug/notifications/api', createConsoleApi(notifications));
  router.use(createConsolePage(notifications));
  router.use(paths, jsonErrors);

  return router;
}
