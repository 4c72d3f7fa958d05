import type { NextFunction, Request, Response } from 'express';

/** Paths (relative to `/v2`) that answer reads only whatever the mode: the base, the catalog, tag lists. */
const READ_ONLY_ROUTES = /^(?:\/?|\/_catalog|\/.+\/tags\/list)$/;

/**
 * `storage.maintenance.readonly.enabled`: manifests, blobs and uploads take GET and HEAD
 * only. As Distribution 2.8 (whose read-only mode leaves the write methods out of those
 * routes), anything else is answered `405 Method not allowed` in plain text with
 * `Allow: GET, HEAD`, after authentication and without an event.
 */
export function readOnlyGuard(req: Request, res: Response, next: NextFunction): void {
  if (req.method === 'GET' || req.method === 'HEAD' || READ_ONLY_ROUTES.test(req.path)) return next();
  res.status(405).set({ Allow: 'GET, HEAD', 'Content-Type': 'text/plain; charset=utf-8', 'X-Content-Type-Options': 'nosniff' }).send('Method not allowed\n');
}
