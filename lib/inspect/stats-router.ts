import express from 'express';
import { DEFAULTS } from '../config/defaults';
import type { Notifications } from '../notifications';

export interface StatsRouterOptions {
  /** Seconds between refreshes of the HTML page. @default 2 */
  refreshSec?: number;
}

const escapeHtml = (text: unknown) =>
  String(text).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

/**
 * Routes that show the pipeline's stats, for a registry's debug address:
 * `GET /debug/vars` (Distribution's expvar shape), `GET /metrics` (Prometheus, from the
 * registry given to `createNotifications`), `GET /debug/notifications` (a page), and the
 * dead letters: `GET /debug/notifications/deadletters?endpoint=NAME&limit=N` and
 * `POST /debug/notifications/deadletters/replay?endpoint=NAME` with `{"ids": [...]}`
 * (or no body to replay them all). Serve them on an address only operators reach.
 */
export function createStatsRouter(notifications: Notifications, options: StatsRouterOptions = {}): express.Router {
  const refreshSec = options.refreshSec ?? DEFAULTS.statsRouter.refreshSec;
  const router = express.Router();

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

  router.post('/debug/notifications/deadletters/replay', express.json({ limit: '1mb' }), async (req, res, next) => {
    const endpoint = endpointOf(req, res);
    if (!endpoint) return;
    const ids: unknown = req.body?.ids;
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

  router.get('/debug/notifications', (_req, res) => {
    const rows = notifications.debugVars().map((e) => {
      const m = e.Metrics;
      const statuses = Object.entries(m.Statuses)
        .map(([code, n]) => `${escapeHtml(code)}: ${n}`)
        .join('<br>');
      return `<tr class="state-${escapeHtml(m.State)}">
  <td><b>${escapeHtml(e.name)}</b><br><small>${escapeHtml(e.url)}</small></td>
  <td class="state">${escapeHtml(m.State)}</td>
  <td>${m.Pending}</td><td>${m.Events}</td><td>${m.Successes}</td><td>${m.Failures}</td><td>${m.Errors}</td><td>${m.Dropped}</td>
  <td><a href="/debug/notifications/deadletters?endpoint=${encodeURIComponent(e.name)}">${m.DeadLettered}</a></td>
  <td>${statuses || '—'}</td></tr>`;
    });
    res.type('html').send(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta http-equiv="refresh" content="${refreshSec}">
<title>Registry notifications</title>
<style>
  body { font: 14px/1.4 system-ui, sans-serif; margin: 2em; color: #222; }
  table { border-collapse: collapse; min-width: 60em; }
  th, td { border: 1px solid #ccc; padding: .4em .7em; text-align: right; vertical-align: top; }
  th:first-child, td:first-child { text-align: left; }
  th { background: #f3f3f3; }
  td.state { font-weight: bold; text-align: center; }
  tr.state-closed td.state { color: #1a7f37; }
  tr.state-open td.state, tr.state-half-open td.state { color: #b35900; }
  tr.state-gone td.state { color: #c62828; }
  small { color: #666; }
</style></head>
<body>
<h1>Registry notifications</h1>
<p>Source <code>${escapeHtml(notifications.source.addr ?? '')}</code>, instance <code>${escapeHtml(notifications.source.instanceID ?? '')}</code>,
queue <code>${escapeHtml(notifications.config.queue.type)}</code>. Refreshes every ${refreshSec}s.
Also as <a href="/debug/vars">JSON</a> and <a href="/metrics">Prometheus metrics</a>.</p>
<table>
<thead><tr><th>endpoint</th><th>state</th><th>pending</th><th>events</th><th>successes</th><th>failures</th><th>errors</th><th>dropped</th><th>dead letters</th><th>answers</th></tr></thead>
<tbody>
${rows.join('\n') || '<tr><td colspan="10">no endpoints configured</td></tr>'}
</tbody></table>
<p><small>State: <b>closed</b> delivering · <b>open</b> waiting after failures · <b>half-open</b> sending one probe ·
<b>gone</b> the endpoint answered 410 and gets nothing more. Failures and errors count attempts; dropped counts events
refused by a full queue or sent to a gone endpoint.</small></p>
</body></html>`);
  });

  return router;
}
