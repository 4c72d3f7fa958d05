import express, { type NextFunction, type Request, type RequestHandler, type Response } from 'express';
import { errorResponder } from './errors';
import { accessLog, type Logger } from './log';

/** What sits in front of the registry's routes: the `http:` and `log:` settings that apply to every response. */
export interface FrontOptions {
  /** `http.headers`: added to every response, error and 404 responses included. */
  headers?: Record<string, string[]>;
  /** `http.prefix`, without a trailing slash: the API is served under `<prefix>/v2/`. */
  prefix?: string;
  /** Writes one access line per response when given (`log.accesslog`). */
  accessLogger?: Logger;
  /** Answers 503 while a health check fails (`health`). */
  health?: RequestHandler;
  /** Told of each unexpected failure outside the registry's routes (answered 500 without details). @default console.error */
  onInternalError?(err: Error): void;
}

/**
 * Mounts the registry app behind the settings that apply to every response. Under a
 * prefix, the `Location` and `Link` headers the registry writes (`/v2/…`) are given the
 * prefix too, so clients that follow them stay under it.
 */
export function createFrontApp(registry: express.Express, options: FrontOptions): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  if (options.accessLogger) app.use(accessLog(options.accessLogger));
  const headers = Object.entries(options.headers ?? {});
  if (headers.length > 0) {
    app.use((_req: Request, res: Response, next: NextFunction) => {
      for (const [name, values] of headers) for (const v of values) res.append(name, v);
      next();
    });
  }
  if (options.health) app.use(options.health);
  const prefix = options.prefix;
  if (prefix) {
    app.use(prefix, (_req: Request, res: Response, next: NextFunction) => {
      const setHeader = res.setHeader.bind(res);
      res.setHeader = ((name: string, value: number | string | readonly string[]) => {
        const lower = name.toLowerCase();
        if (typeof value === 'string' && (lower === 'location' || lower === 'link')) value = value.replace(/^(<?)\/v2\//, `$1${prefix}/v2/`);
        return setHeader(name, value);
      }) as typeof res.setHeader;
      next();
    });
    app.use(prefix, registry);
    app.use((_req: Request, res: Response) => {
      res.status(404).type('text/plain').send('404 page not found\n');
    });
  } else {
    app.use(registry);
  }
  app.use(errorResponder(options.onInternalError ?? ((err) => console.error('registry: internal error:', err))));
  return app;
}
