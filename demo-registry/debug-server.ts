import express from 'express';
import { createStatsRouter, type Notifications } from '../lib';

/**
 * The debug app served on `http.debug.addr`: the library's stats routes (`/debug/vars`
 * in Distribution's expvar shape, `/metrics`, and the `/debug/notifications` page).
 */
export function createDebugApp(notifications: Notifications): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.use(createStatsRouter(notifications));
  return app;
}
