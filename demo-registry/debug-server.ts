import express from 'express';
import { createStatsRouter, requireAdmin, type AdminAuth, type Notifications } from '../lib';
import { errorResponder } from './errors';

export interface DebugAppOptions {
  /** `http.debug.prometheus.path` when enabled: Prometheus metrics are served there as well as at `/metrics`. */
  prometheusPath?: string;
  /** `GET /debug/health`: the failing health checks. */
  health?: express.RequestHandler;
  /** `http.debug.auth`: credentials every route of the debug address requires. @default none */
  auth?: AdminAuth;
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
  // The stats router checks its own routes; the extra metrics path and health need the same.
  const admin = requireAdmin(options.auth);
  const extra = options.prometheusPath;
  if (extra && extra !== '/metrics') {
    app.get(extra, admin, (_req, res, next) => {
      notifications.metricsRegistry.metrics().then((text) => res.type(notifications.metricsRegistry.contentType).send(text), next);
    });
  }
  if (options.health) app.get('/debug/health', admin, options.health);
  app.use(createStatsRouter(notifications, options.auth ? { auth: options.auth } : {}));
  // Not Express's default page: it shows the stack (and the paths in it) outside production.
  app.use(errorResponder(options.onInternalError ?? ((err) => console.error('registry: debug server: internal error:', err))));
  return app;
}
