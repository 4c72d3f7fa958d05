import express from 'express';
import { createStatsRouter, type Notifications } from '../lib';
import { errorResponder } from './errors';

export interface DebugAppOptions {
  /** `http.debug.prometheus.path` when enabled: Prometheus metrics are served there as well as at `/metrics`. */
  prometheusPath?: string;
  /** `GET /debug/health`: the failing health checks. */
  health?: express.RequestHandler;
  /** Told of each unexpected failure (answered 500 without details). @default console.error */
  onInternalError?(err: Error): void;
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
  // Not Express's default page: it shows the stack (and the paths in it) outside production.
  app.use(errorResponder(options.onInternalError ?? ((err) => console.error('registry: debug server: internal error:', err))));
  return app;
}
