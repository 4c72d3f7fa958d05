import { createHash, timingSafeEqual } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import { loadOptionalPackage } from '../stores/drivers';

/**
 * Credentials the stats routes require: an htpasswd file of bcrypt entries (`htpasswd -B`,
 * as Distribution's `auth.htpasswd`), checked as HTTP Basic; or a token, taken as
 * `Authorization: Bearer <token>` or as the password of HTTP Basic with any user name
 * (so that a browser's login prompt works).
 */
export type AdminAuth = { htpasswd: string; realm?: string } | { token: string; realm?: string };

/** The realm browsers show in their login prompt. */
export const ADMIN_REALM = 'registry notifications';

/** How long a verified user and password are taken without running bcrypt again, in ms. */
const VERIFIED_TTL_MS = 60_000; // 1m
/** How often the htpasswd file is looked at for changes, at most, in ms. */
const RELOAD_CHECK_MS = 1000; // 1s

type BcryptCompare = (password: string, hash: string) => Promise<boolean>;

/** bcryptjs, loaded on first use: only a router given an htpasswd file needs it. */
function bcryptCompare(): BcryptCompare {
  const mod = loadOptionalPackage<{ compare: BcryptCompare; default?: { compare: BcryptCompare } }>('bcryptjs', 'createStatsRouter: auth.htpasswd');
  return (mod.default ?? mod).compare;
}

const sha256 = (text: string) => createHash('sha256').update(text).digest();

/** Compares two secrets in time that does not depend on where they differ. */
function sameSecret(a: string, b: string): boolean {
  return timingSafeEqual(sha256(a), sha256(b));
}

/** The user and password of a Basic `Authorization` header, or the token of a Bearer one. */
function credentials(req: Request): { user?: string; password?: string; bearer?: string } {
  const header = req.get('authorization') ?? '';
  const bearer = /^Bearer\s+(\S+)\s*$/i.exec(header);
  if (bearer) return { bearer: bearer[1] };
  const basic = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(header);
  if (!basic) return {};
  const decoded = Buffer.from(basic[1], 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  return colon < 0 ? {} : { user: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}

/** An htpasswd file, read again when it changes. */
class HtpasswdFile {
  private users = new Map<string, string>();
  private mtimeMs = -1;
  private checkedAt = -Infinity;
  private loading?: Promise<void>;
  private readonly compare = bcryptCompare();
  /** sha256(user, password, hash) of recent successes, with when they expire. */
  private readonly verified = new Map<string, number>();

  constructor(private readonly file: string) {}

  async check(user: string, password: string): Promise<boolean> {
    await this.reload();
    const hash = this.users.get(user);
    if (!hash) return false;
    const key = sha256(`${user}\0${password}\0${hash}`).toString('hex');
    const now = Date.now();
    if ((this.verified.get(key) ?? 0) > now) return true;
    // bcryptjs's compare works in slices between other callbacks: the event loop keeps turning.
    if (!(await this.compare(password, hash))) return false;
    if (this.verified.size > 1000) this.verified.clear();
    this.verified.set(key, now + VERIFIED_TTL_MS);
    return true;
  }

  private reload(): Promise<void> {
    if (performance.now() - this.checkedAt < RELOAD_CHECK_MS) return Promise.resolve();
    this.loading ??= (async () => {
      try {
        const info = await stat(this.file);
        if (info.mtimeMs === this.mtimeMs) return;
        const users = new Map<string, string>();
        for (const line of (await readFile(this.file, 'utf8')).split(/\r?\n/)) {
          const entry = line.trim();
          const colon = entry.indexOf(':');
          if (!entry || entry.startsWith('#') || colon <= 0) continue;
          const hash = entry.slice(colon + 1);
          // bcrypt entries only, as Distribution: anything else never matches.
          if (/^\$2[aby]\$/.test(hash)) users.set(entry.slice(0, colon), hash);
        }
        this.users = users;
        this.mtimeMs = info.mtimeMs;
        this.verified.clear();
      } catch {
        // Unreadable: nobody gets in until it is readable again.
        this.users = new Map();
        this.mtimeMs = -1;
      } finally {
        this.checkedAt = performance.now();
        this.loading = undefined;
      }
    })();
    return this.loading;
  }
}

/**
 * Middleware that lets through only requests with the configured credentials; others
 * get `401` with `WWW-Authenticate: Basic realm="registry notifications"` and a JSON
 * error. Without `auth` every request passes (serve the routes only where operators are).
 */
export function requireAdmin(auth: AdminAuth | undefined): RequestHandler {
  if (!auth) return (_req, _res, next) => next();
  const realm = (auth.realm ?? ADMIN_REALM).replace(/["\\]/g, '');
  let check: (req: Request) => Promise<boolean>;
  if ('token' in auth) {
    if (!auth.token) throw new TypeError('createStatsRouter: auth.token must not be empty');
    const token = auth.token;
    check = async (req) => {
      const c = credentials(req);
      const given = c.bearer ?? c.password;
      return given !== undefined && sameSecret(given, token);
    };
  } else if ('htpasswd' in auth && auth.htpasswd) {
    const file = new HtpasswdFile(auth.htpasswd);
    check = async (req) => {
      const c = credentials(req);
      return c.user !== undefined && c.password !== undefined && file.check(c.user, c.password);
    };
  } else {
    throw new TypeError('createStatsRouter: auth takes { htpasswd: "/path/to/file" } or { token: "secret" }');
  }
  return (req: Request, res: Response, next: NextFunction) => {
    check(req).then(
      (ok) => {
        if (ok) return next();
        res.set('WWW-Authenticate', `Basic realm="${realm}", charset="UTF-8"`);
        res.status(401).json({ error: 'credentials required: HTTP Basic, or Authorization: Bearer with the token' });
      },
      (err: Error) => next(err),
    );
  };
}

/** The origin the request was made to, as a browser writes it in `Origin`: `scheme://host[:port]`. */
function ownOrigin(req: Request): string {
  return `${req.protocol}://${req.get('host') ?? ''}`.toLowerCase();
}

/**
 * Middleware for routes that change something: refuses with 403 a request that is not
 * `Content-Type: application/json` (an HTML form cannot send that without the page's
 * script being on this origin) or that comes from another origin (`Origin` present and
 * not this one, or `Sec-Fetch-Site: cross-site`). Tools such as curl send no `Origin`
 * and pass.
 */
export function sameOriginJson(): RequestHandler {
  return (req, res, next) => {
    const origin = req.get('origin');
    if ((origin !== undefined && origin.toLowerCase() !== ownOrigin(req)) || req.get('sec-fetch-site') === 'cross-site') {
      res.status(403).json({ error: `refused: a request from another origin (${origin ?? 'cross-site'}) may not change anything here` });
      return;
    }
    const type = (req.get('content-type') ?? '').split(';')[0].trim().toLowerCase();
    if (type !== 'application/json') {
      res.status(403).json({ error: `refused: send a JSON body with Content-Type: application/json (got ${req.get('content-type') ?? 'no Content-Type'})` });
      return;
    }
    next();
  };
}
