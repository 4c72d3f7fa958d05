import { randomBytes } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import bcrypt from 'bcryptjs';
import { type BcryptPool, sharedBcryptPool } from './bcrypt-pool';
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import { ConfigError } from '../lib';
import { RegistryError } from './errors';

/** Basic authentication against an htpasswd file (`auth.htpasswd`). */
export interface HtpasswdOptions {
  /** Realm named in `WWW-Authenticate`. */
  realm: string;
  /** File of `user:hash` lines with bcrypt hashes, as `htpasswd -B` writes them. */
  path: string;
  /** Told when the file cannot be read or parsed at a request (answered 400, as Distribution). @default console.error */
  onError?(err: Error): void;
  /** Where passwords are compared, off the event loop. @default a pool shared by the process (sharedBcryptPool) */
  pool?: BcryptPool;
  /** Failed logins (wrong password or unknown user) one client address may make within `failureWindowMs`; then 429. @default 10 */
  maxFailures?: number;
  /** The window failed logins are counted over; a blocked client may try again once its oldest failure in it is this old. @default 60000 (1m) */
  failureWindowMs?: number;
}

export const DEFAULT_AUTH_LIMITS = {
  maxFailures: 10,
  failureWindowMs: 60_000, // 1m
} as const;

/** The authenticated user, as this registry's auth puts it on `req.user` (the notifications actor). */
export interface RegistryUser {
  name: string;
}

/** A request after authentication. */
export type AuthenticatedRequest = Request & { user?: RegistryUser };

const BCRYPT = /^\$2[abxy]\$\d{2}\$[./A-Za-z0-9]{53}$/;

/**
 * Reads an htpasswd file into user -> bcrypt hash. Throws ConfigError (field
 * `auth.htpasswd.path`) when the file cannot be read or a line is not `user:bcrypt-hash`:
 * Distribution, too, takes bcrypt entries only.
 */
export function loadHtpasswd(file: string, field = 'auth.htpasswd.path'): Map<string, string> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(field, `cannot read htpasswd file ${JSON.stringify(file)}: ${(err as Error).message}`);
  }
  const users = new Map<string, string>();
  text.split(/\r?\n/).forEach((line, i) => {
    const entry = line.trim();
    if (entry === '' || entry.startsWith('#')) return;
    const colon = entry.indexOf(':');
    const user = entry.slice(0, colon);
    const hash = entry.slice(colon + 1);
    if (colon <= 0 || !BCRYPT.test(hash)) {
      throw new ConfigError(
        field,
        `${file} line ${i + 1}: expected "user:bcrypt-hash" (as made by htpasswd -B), got ${JSON.stringify(colon > 0 ? `${user}:…` : entry)}`,
      );
    }
    users.set(user, hash);
  });
  return users;
}

/** Splits a Basic `Authorization` header into user and password. */
export function parseBasicAuth(header: string | undefined): { user: string; password: string } | undefined {
  const m = header?.match(/^Basic\s+([A-Za-z0-9+/=]+)\s*$/i);
  if (!m) return undefined;
  const decoded = Buffer.from(m[1], 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 0) return undefined;
  return { user: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}

/** The cost (log2 rounds) of a bcrypt hash: `$2y$10$…` is 10. */
export function bcryptCost(hash: string): number {
  return Number(hash.slice(4, 6));
}

const BCRYPT_ALPHABET = './ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

/**
 * A well-formed bcrypt hash of `cost` with a random salt and checksum, which no password
 * matches in practice: what an unknown user's password is compared against, so that the
 * answer takes the same work as a known user's wrong password.
 */
export function dummyHash(cost: number): string {
  const checksum = Array.from(randomBytes(31), (b) => BCRYPT_ALPHABET[b % 64]).join('');
  return bcrypt.genSaltSync(cost) + checksum;
}

/**
 * The users of an htpasswd file, read again when the file changes, as Distribution 2.8
 * reads it: at requests, not at start-up, so a registry starts with the file still
 * missing (Debian's sample config names a directory) and picks up edits without a restart.
 */
export class HtpasswdFile {
  private users: Map<string, string> | undefined;
  private dummy = '';
  private stamp = '';

  constructor(readonly path: string) {}

  /** The users now; throws (ConfigError) when the file cannot be read or parsed. */
  current(): Map<string, string> {
    const st = statSync(this.path);
    const stamp = `${st.mtimeMs}:${st.size}:${st.ino}`;
    if (!this.users || stamp !== this.stamp) {
      const users = loadHtpasswd(this.path);
      // The file's highest cost (`htpasswd -B` writes 5 unless given `-C`).
      this.dummy = dummyHash(Math.max(4, ...[...users.values()].map(bcryptCost)));
      this.users = users;
      this.stamp = stamp;
    }
    return this.users;
  }

  /** What an unknown user's password is compared against: a dummy hash of the file's cost (see `dummyHash`). */
  dummyHash(): string {
    this.current();
    return this.dummy;
  }
}

/**
 * Failed logins per client address over a sliding window: a client with `maxFailures` in
 * the last `windowMs` is blocked until the oldest of them leaves the window. Success does
 * not clear the count (one known password must not buy guesses at another). At most
 * `maxClients` addresses are remembered, the least recently failing forgotten first.
 */
export class FailedLogins {
  private readonly failures = new Map<string, number[]>();

  constructor(
    readonly maxFailures: number,
    readonly windowMs: number,
    private readonly now: () => number = Date.now,
    private readonly maxClients = 10_000,
  ) {}

  /** Milliseconds until `client` may try again; 0 when it may now. */
  blockedForMs(client: string): number {
    const recent = this.recent(client);
    if (recent.length < this.maxFailures) return 0;
    return Math.max(1, recent[recent.length - this.maxFailures] + this.windowMs - this.now());
  }

  fail(client: string): void {
    const recent = this.recent(client);
    recent.push(this.now());
    // Only the newest `maxFailures` matter; set again so that the map is ordered by last failure.
    this.failures.delete(client);
    this.failures.set(client, recent.slice(-this.maxFailures));
    if (this.failures.size > this.maxClients) this.failures.delete(this.failures.keys().next().value as string);
  }

  private recent(client: string): number[] {
    const since = this.now() - this.windowMs;
    const kept = (this.failures.get(client) ?? []).filter((t) => t > since);
    if (kept.length === 0) this.failures.delete(client);
    return kept;
  }
}

/**
 * Middleware that admits requests with valid Basic credentials, setting `req.user`,
 * and answers others 401 UNAUTHORIZED with a `WWW-Authenticate: Basic realm=...` challenge.
 * A request with credentials while the file cannot be read is answered 400, as
 * Distribution 2.8 does, and the problem goes to `onError`.
 *
 * Against guessing: passwords are compared in worker threads (`pool`), so a flood of
 * wrong ones does not hold up other requests; an unknown user's password is compared with
 * a dummy hash of the file's cost, so that answer is neither sooner nor different; and a
 * client address with `maxFailures` failed logins within `failureWindowMs` gets 429
 * TOOMANYREQUESTS with `Retry-After` (seconds) for any request with credentials, before
 * any comparison, until the window lets it try again.
 */
export function htpasswdAuth(options: HtpasswdOptions): RequestHandler {
  const file = new HtpasswdFile(options.path);
  const onError = options.onError ?? ((err: Error) => console.error(`registry: error checking authorization: ${err.message}`));
  const pool = options.pool ?? sharedBcryptPool();
  const limits = new FailedLogins(options.maxFailures ?? DEFAULT_AUTH_LIMITS.maxFailures, options.failureWindowMs ?? DEFAULT_AUTH_LIMITS.failureWindowMs);
  // bcrypt is slow on purpose; a client makes many requests with the same credentials.
  const verified = new Map<string, string>();
  return (req: Request, res: Response, next: NextFunction) => {
    const challenge = (message: string) => {
      const err = new RegistryError('UNAUTHORIZED', message);
      res.status(401).set('WWW-Authenticate', `Basic realm="${options.realm}"`).json(err.toJSON());
    };
    const header = req.headers.authorization;
    const creds = parseBasicAuth(header);
    if (!creds) return challenge('authentication required');
    // The client's address as Express sees it: the forwarded one only behind a proxy the app trusts (`trust proxy`).
    const client = req.ip ?? req.socket.remoteAddress ?? '';
    const blockedMs = limits.blockedForMs(client);
    if (blockedMs > 0) {
      const seconds = Math.ceil(blockedMs / 1000);
      const err = new RegistryError('TOOMANYREQUESTS', `too many requests: ${limits.maxFailures} failed logins from this address; try again in ${seconds}s`);
      res.status(429).set('Retry-After', String(seconds)).json(err.toJSON());
      return;
    }
    let users: Map<string, string>;
    let dummy: string;
    try {
      users = file.current();
      dummy = file.dummyHash();
    } catch (err) {
      onError(err as Error);
      res.status(400).set('Content-Length', '0').end();
      return;
    }
    const hash = users.get(creds.user);
    if (hash !== undefined && verified.get(header!) === hash) {
      (req as AuthenticatedRequest).user = { name: creds.user };
      return next();
    }
    // An unknown user takes the same path as a wrong password: one comparison, the same answer.
    pool.compare(creds.password, hash ?? dummy).then(
      (ok) => {
        if (!ok || hash === undefined) {
          limits.fail(client);
          return challenge('authentication required: unknown user or wrong password');
        }
        if (verified.size > 1000) verified.clear();
        verified.set(header!, hash);
        (req as AuthenticatedRequest).user = { name: creds.user };
        next();
      },
      (err: Error) => next(err),
    );
  };
}
