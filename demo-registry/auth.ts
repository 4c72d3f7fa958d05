import { readFileSync, statSync } from 'node:fs';
import bcrypt from 'bcryptjs';
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
}

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

/**
 * The users of an htpasswd file, read again when the file changes, as Distribution 2.8
 * reads it: at requests, not at start-up, so a registry starts with the file still
 * missing (Debian's sample config names a directory) and picks up edits without a restart.
 */
export class HtpasswdFile {
  private users: Map<string, string> | undefined;
  private stamp = '';

  constructor(readonly path: string) {}

  /** The users now; throws (ConfigError) when the file cannot be read or parsed. */
  current(): Map<string, string> {
    const st = statSync(this.path);
    const stamp = `${st.mtimeMs}:${st.size}:${st.ino}`;
    if (!this.users || stamp !== this.stamp) {
      this.users = loadHtpasswd(this.path);
      this.stamp = stamp;
    }
    return this.users;
  }
}

/**
 * Middleware that admits requests with valid Basic credentials, setting `req.user`,
 * and answers others 401 UNAUTHORIZED with a `WWW-Authenticate: Basic realm=...` challenge.
 * A request with credentials while the file cannot be read is answered 400, as
 * Distribution 2.8 does, and the problem goes to `onError`.
 */
export function htpasswdAuth(options: HtpasswdOptions): RequestHandler {
  const file = new HtpasswdFile(options.path);
  const onError = options.onError ?? ((err: Error) => console.error(`registry: error checking authorization: ${err.message}`));
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
    let users: Map<string, string>;
    try {
      users = file.current();
    } catch (err) {
      onError(err as Error);
      res.status(400).set('Content-Length', '0').end();
      return;
    }
    const hash = users.get(creds.user);
    if (hash === undefined) return challenge('authentication required: unknown user or wrong password');
    if (verified.get(header!) === hash) {
      (req as AuthenticatedRequest).user = { name: creds.user };
      return next();
    }
    bcrypt.compare(creds.password, hash).then(
      (ok) => {
        if (!ok) return challenge('authentication required: unknown user or wrong password');
        if (verified.size > 1000) verified.clear();
        verified.set(header!, hash);
        (req as AuthenticatedRequest).user = { name: creds.user };
        next();
      },
      (err: Error) => next(err),
    );
  };
}
