import express from 'express';
import { createStatsRouter, type Notifications } from '../lib';

export interface DebugAppOptions {
  /** `http.debug.prometheus.path` when enabled: Prometheus metrics are served there as well as at `/metrics`. */
  prometheusPath?: string;
  /** `GET /debug/health`: the failing health checks. */
  health?: express.RequestHandler;
}

/**
 * The debug app served on `http.debug.addr`: the library's stats routes (`/debug/vars`
 * in Distribution's expvar shape, `/metrics`, and the `/debug/notifications` page), and
 * `/debug/health` when health checks are configured.
 */
export function createDebugApp(notifications: Notifications, options: DebugAppOptions = {}): express.Express {
  const app = express();
  app.disable('x-powered-by');
  const extra = options.prometheusPath;
  if (extra && extra !== '/metrics') {
    app.get(extra, (_req, res, next) => {
      notifications.metricsRegistry.metrics().then((text) => res.type(notifications.metricsRegistry.contentType).send(text), next);
    });
  }
  if (options.health) app.get('/debug/health', options.health);
  app.use(createStatsRouter(notifications));
  return app;
}
