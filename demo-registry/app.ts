import express, { type Request, type Response } from 'express';
import { pipeline } from 'node:stream/promises';
import type { Notifications } from '../lib';
import { htpasswdAuth, type HtpasswdOptions } from './auth';
import { RegistryError, errorResponder, isRegistryError } from './errors';
import { accepts, parseManifest } from './manifest-format';
import { readOnlyGuard } from './read-only';
import { checkName, checkTag, lookupReference, looksLikeDigest, parseDigest } from './reference';
import type { FilesystemRepository, FilesystemStorage } from './storage';

export interface RegistryAppOptions {
  /** Where repositories live. */
  storage: FilesystemStorage;
  /** The notifications pipeline; its middleware is mounted after authentication. @default none: no events */
  notifications?: Notifications;
  /** Basic authentication from an htpasswd file. @default anonymous access */
  auth?: HtpasswdOptions;
  /** Whether manifests, tags and blobs may be deleted (`storage.delete.enabled`). @default false */
  deleteEnabled?: boolean;
  /** Largest manifest accepted on PUT, in bytes. @default 4 MiB */
  maxManifestBytes?: number;
  /** Most entries in one catalog page (`catalog.maxentries`); a larger `n` is refused, as Distribution. @default 1000 */
  maxCatalogEntries?: number;
  /** `storage.maintenance.readonly.enabled`: pushes and deletes answer 405, as Distribution. @default false */
  readOnly?: boolean;
  /**
   * Longest a request other than a blob upload may take to arrive, body included: Node's
   * `server.requestTimeout`, which the server must leave off (0) for uploads to last longer.
   * Answered 408 and closed. @default 300000 (5m, Node's default)
   */
  requestTimeoutMs?: number;
  /**
   * Longest the body of a blob upload (POST, PATCH, PUT under `/blobs/uploads/`) may go
   * without a byte arriving; the connection is then answered 408 and closed, and a chunked
   * upload's session keeps what arrived. Uploads have no overall limit: docker and skopeo
   * send a layer in one request. @default 60000 (1m)
   */
  uploadIdleTimeoutMs?: number;
  /** Counts requests whose handling is under way, so that shutdown can wait for their events. @default none */
  inFlight?: InFlight;
  /** Told of each unexpected failure (the client gets a 500 `UNKNOWN` that says nothing of it). @default console.error */
  onInternalError?(err: Error): void;
}

export const DEFAULT_APP_OPTIONS = {
  deleteEnabled: false,
  maxManifestBytes: 4 * 1024 * 1024, // 4 MiB
  maxCatalogEntries: 1000,
  requestTimeoutMs: 300_000, // 5m, Node's own requestTimeout
  uploadIdleTimeoutMs: 60_000, // 1m
} as const;

/** Every response of the API carries this, as Distribution's do. */
export const API_VERSION_HEADER = { 'Docker-Distribution-API-Version': 'registry/2.0' } as const;

type Route =
  | { kind: 'base' }
  | { kind: 'catalog' }
  | { kind: 'tags'; name: string }
  | { kind: 'manifest'; name: string; reference: string }
  | { kind: 'uploads'; name: string }
  | { kind: 'upload'; name: string; id: string }
  | { kind: 'blob'; name: string; digest: string };

// Suffixes are fixed, so a greedy name takes everything before them (names may contain "/").
const ROUTES: Array<[RegExp, (m: RegExpMatchArray) => Route]> = [
  [/^\/?$/, () => ({ kind: 'base' })],
  [/^\/_catalog$/, () => ({ kind: 'catalog' })],
  [/^\/(.+)\/tags\/list$/, (m) => ({ kind: 'tags', name: m[1] })],
  [/^\/(.+)\/manifests\/([^/]+)$/, (m) => ({ kind: 'manifest', name: m[1], reference: m[2] })],
  [/^\/(.+)\/blobs\/uploads\/?$/, (m) => ({ kind: 'uploads', name: m[1] })],
  [/^\/(.+)\/blobs\/uploads\/([^/]+)$/, (m) => ({ kind: 'upload', name: m[1], id: m[2] })],
  [/^\/(.+)\/blobs\/([^/]+)$/, (m) => ({ kind: 'blob', name: m[1], digest: m[2] })],
];

/** The route a path (relative to `/v2`) names, before any of its parts are validated. */
function matchRoute(path: string): Route | undefined {
  for (const [re, build] of ROUTES) {
    const m = path.match(re);
    if (m) return build(m);
  }
  return undefined;
}

/** Percent-decodes a path segment (clients may send `sha256%3A…`); a malformed one stays as sent and fails validation. */
function decode(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}

function unsupported(req: Request): RegistryError {
  return new RegistryError('UNSUPPORTED', `the operation is unsupported: ${req.method} is not allowed on ${req.baseUrl}${req.path}`);
}

function queryString(req: Request, key: string): string | undefined {
  const v = (req.query as Record<string, unknown>)[key];
  return typeof v === 'string' ? v : undefined;
}

/** `0-<last byte>` of an upload of `size` bytes, as Distribution writes `Range` (an empty upload is `0-0`). */
function uploadRange(size: number): string {
  return `0-${Math.max(0, size - 1)}`;
}

/**
 * Reads a request body of at most `limit` bytes. A larger one is refused with 413 at once:
 * before reading anything when `Content-Length` says so, else as soon as the limit is
 * passed; the rest is never read (the error answer closes the connection).
 */
function readBody(req: Request, limit: number): Promise<Buffer> {
  const tooLarge = () => new RegistryError('MANIFEST_INVALID', `manifest invalid: larger than ${limit} bytes`, { limit }, 413);
  if (Number(req.headers['content-length'] ?? 0) > limit) return Promise.reject(tooLarge());
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        req.removeAllListeners('data');
        req.pause();
        reject(tooLarge());
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

/** Parses `n` and `last` of a listing; `n` absent means `fallback`. */
function pagination(req: Request, fallback: number, max: number): { n: number; last?: string } {
  const nText = queryString(req, 'n');
  let n = fallback;
  if (nText !== undefined) {
    if (!/^\d+$/.test(nText)) {
      throw new RegistryError('PAGINATION_NUMBER_INVALID', `invalid number of results requested: n=${JSON.stringify(nText)}, expected a whole number`, {
        n: nText,
      });
    }
    n = Number(nText);
    if (n > max) {
      throw new RegistryError('PAGINATION_NUMBER_INVALID', `invalid number of results requested: n=${n} is more than the ${max} allowed`, { n });
    }
  }
  const last = queryString(req, 'last');
  return { n, ...(last ? { last } : {}) };
}

/** One page of sorted `items` after `last`; sets `Link` when more remain. */
function page(res: Response, path: string, items: string[], { n, last }: { n: number; last?: string }): string[] {
  const rest = last === undefined ? items : items.filter((i) => i > last);
  const out = rest.slice(0, n);
  if (rest.length > out.length && out.length > 0) {
    res.set('Link', `<${path}?last=${encodeURIComponent(out[out.length - 1])}&n=${n}>; rel="next"`);
  }
  return out;
}

interface ByteRange {
  start: number;
  end: number;
}

/** A single `bytes=` range against `size`; undefined when absent or not one we serve, 'unsatisfiable' past the end. */
function parseRange(header: string | undefined, size: number): ByteRange | 'unsatisfiable' | undefined {
  const m = header?.match(/^bytes=(\d*)-(\d*)$/);
  if (!m || (m[1] === '' && m[2] === '')) return undefined;
  if (m[1] === '') {
    const suffix = Number(m[2]);
    if (suffix === 0) return 'unsatisfiable';
    return { start: Math.max(0, size - suffix), end: size - 1 };
  }
  const start = Number(m[1]);
  const end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1);
  if (start >= size || end < start) return 'unsatisfiable';
  return { start, end };
}

/**
 * Requests being handled. A handler can outlive its connection (a blob being verified when
 * the client went away, or shutdown closed it); its events still go out, so the
 * notifications pipeline must stay open until it is done.
 */
export class InFlight {
  private count = 0;
  private waiters: Array<() => void> = [];

  get size(): number {
    return this.count;
  }

  /** Marks a request as under way; call the returned function when it is done. */
  enter(): () => void {
    this.count++;
    let left = false;
    return () => {
      if (left) return;
      left = true;
      if (--this.count === 0) for (const wake of this.waiters.splice(0)) wake();
    };
  }

  /** Resolves once no request is under way, or after `timeoutMs`; true when none is. */
  idle(timeoutMs: number): Promise<boolean> {
    if (this.count === 0) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(this.count === 0), timeoutMs);
      this.waiters.push(() => {
        clearTimeout(timer);
        resolve(true);
      });
    });
  }
}

/** Whether a request sends a blob upload's bytes (the routes without an overall time limit). */
function isUploadBody(req: Request): boolean {
  const route = matchRoute(req.path);
  return (route?.kind === 'uploads' || route?.kind === 'upload') && ['POST', 'PATCH', 'PUT'].includes(req.method);
}

/**
 * Time limits on receiving request bodies: a blob upload is cut when its body goes
 * `idleMs` without a byte; any other request when it has not fully arrived `totalMs` after
 * it started. Both answer 408 with `Connection: close`, as Node does for its own timeout.
 */
function bodyDeadlines(totalMs: number, idleMs: number): express.RequestHandler {
  return (req, res, next) => {
    if (req.complete) return next();
    const cut = () => {
      if (req.complete) return;
      if (!res.headersSent) res.writeHead(408, { Connection: 'close', 'Content-Length': '0' }).end();
      req.socket.destroySoon();
    };
    if (isUploadBody(req)) {
      // The socket's idle timer counts reads and writes; off again once the body is in.
      req.setTimeout(idleMs, cut);
      req.once('end', () => req.socket.setTimeout(0));
      res.once('close', () => req.socket.setTimeout(0));
    } else {
      const timer = setTimeout(cut, totalMs);
      timer.unref();
      req.once('end', () => clearTimeout(timer));
      res.once('close', () => clearTimeout(timer));
    }
    next();
  };
}

/**
 * An Express app serving the OCI distribution API under `/v2/`, on filesystem storage.
 * Operations that notifications are about go through `notifications.repository(req, …)`,
 * so each one that succeeds emits its event; checks and listings use the storage directly.
 */
export function createRegistryApp(options: RegistryAppOptions): express.Express {
  const opts = { ...DEFAULT_APP_OPTIONS, ...definedOnly(options) };
  const { storage, notifications } = options;
  const logError = options.onInternalError ?? ((err: Error) => console.error('registry: internal error:', err));
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);

  // Before authentication: the time a body takes to arrive counts from the start.
  app.use('/v2', bodyDeadlines(opts.requestTimeoutMs, opts.uploadIdleTimeoutMs));
  const v2 = express.Router();
  v2.use((_req, res, next) => {
    res.set(API_VERSION_HEADER);
    next();
  });
  if (opts.auth) v2.use(htpasswdAuth(opts.auth));
  if (opts.readOnly) v2.use(readOnlyGuard);
  // After auth: the middleware reads the actor from req.user when the request starts.
  if (notifications) v2.use(notifications.middleware);
  v2.use((req, res, next) => {
    const done = opts.inFlight?.enter();
    handle(req, res)
      .catch(next)
      .finally(() => done?.());
  });
  app.use('/v2', v2);

  // Errors as the spec's JSON body; anything unexpected is a 500 with code UNKNOWN, logged, its message (paths) not told.
  app.use(errorResponder(logError, API_VERSION_HEADER));

  const repositoryFor = (req: Request, name: string): { raw: FilesystemRepository; repo: FilesystemRepository } => {
    const raw = storage.repository(name);
    return { raw, repo: notifications ? notifications.repository(req, raw) : raw };
  };

  const requireDelete = (): void => {
    if (!opts.deleteEnabled) throw new RegistryError('UNSUPPORTED', 'the operation is unsupported: deletes are disabled (storage.delete.enabled is false)');
  };

  /**
   * Dispatches one `/v2` request. Names are validated when the repository is opened
   * (NAME_INVALID), references when parsed (TAG_INVALID, DIGEST_INVALID); every
   * RegistryError thrown on the way becomes the spec's error response.
   */
  async function handle(req: Request, res: Response): Promise<void> {
    const route = matchRoute(req.path);
    if (!route) {
      res.status(404).type('text/plain').send('404 page not found\n');
      return;
    }
    const method = req.method;
    switch (route.kind) {
      case 'base':
        if (method !== 'GET' && method !== 'HEAD') throw unsupported(req);
        res.status(200).json({});
        return;
      case 'catalog': {
        if (method !== 'GET') throw unsupported(req);
        const names = page(res, '/v2/_catalog', await storage.catalog(), pagination(req, opts.maxCatalogEntries, opts.maxCatalogEntries));
        res.status(200).json({ repositories: names });
        return;
      }
      case 'tags': {
        if (method !== 'GET') throw unsupported(req);
        const { raw } = repositoryFor(req, route.name);
        if (!(await raw.exists())) throw new RegistryError('NAME_UNKNOWN', `repository name not known to registry: ${route.name}`, { name: route.name });
        const tags = page(res, `/v2/${route.name}/tags/list`, await raw.tags.list(), pagination(req, Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER));
        res.status(200).json({ name: route.name, tags });
        return;
      }
      case 'manifest':
        return manifestRoute(req, res, route.name, decode(route.reference));
      case 'blob':
        return blobRoute(req, res, route.name, decode(route.digest));
      case 'uploads':
        if (method !== 'POST') throw unsupported(req);
        return startUpload(req, res, route.name);
      case 'upload':
        return uploadRoute(req, res, route.name, decode(route.id));
    }
  }

  /**
   * Manifests by tag or digest. Events: GET and HEAD pull (with the tag when by tag), PUT
   * pushes; DELETE by digest deletes the manifest and then untags each tag that pointed at
   * it (one event each), DELETE by tag untags only. A PUT refuses a reference that is
   * neither a tag nor a digest (TAG_INVALID, DIGEST_INVALID); GET, HEAD and DELETE answer it
   * MANIFEST_UNKNOWN, since it names nothing (as Distribution and the conformance suite).
   */
  async function manifestRoute(req: Request, res: Response, name: string, reference: string): Promise<void> {
    const { raw, repo } = repositoryFor(req, name);
    const byDigest = looksLikeDigest(reference);
    let ref: NonNullable<ReturnType<typeof lookupReference>>;
    if (req.method === 'PUT') {
      ref = byDigest ? { digest: (parseDigest(reference), reference) } : { tag: checkTag(reference) };
    } else {
      const found = lookupReference(reference);
      if (found === undefined) {
        throw new RegistryError('MANIFEST_UNKNOWN', `manifest unknown: ${JSON.stringify(reference)} is neither a valid tag nor a valid digest`, {
          name,
          reference,
        });
      }
      ref = found;
    }
    switch (req.method) {
      case 'GET':
      case 'HEAD': {
        // Negotiate on the stored media type first, so a refusal never reaches the evented path.
        const stored = await raw.manifests.get(ref);
        if (!accepts(req.headers.accept, stored.mediaType)) {
          throw new RegistryError('MANIFEST_UNKNOWN', `manifest unknown: ${reference} is a ${stored.mediaType}, which the Accept header does not allow`, {
            mediaType: stored.mediaType,
            accept: req.headers.accept,
          });
        }
        let manifest = stored;
        if (repo !== raw) {
          // The pull event comes from the evented view; it answers what was just read, reading nothing again.
          raw.manifests.reuseOnce(ref, stored);
          manifest = await repo.manifests.get(ref);
        }
        res.statusCode = 200;
        res.setHeader('Content-Type', manifest.mediaType);
        res.setHeader('Content-Length', manifest.payload.length);
        res.setHeader('Docker-Content-Digest', manifest.digest);
        res.setHeader('ETag', `"${manifest.digest}"`);
        res.end(req.method === 'GET' ? manifest.payload : undefined);
        return;
      }
      case 'PUT': {
        const payload = await readBody(req, opts.maxManifestBytes);
        // Resolved here so the event carries the real type even when the client sent a generic one.
        const { mediaType } = parseManifest(req.headers['content-type'], payload);
        const digest = await repo.manifests.put({ mediaType, payload }, byDigest ? { digest: reference } : { tag: reference });
        res
          .status(201)
          .set({ Location: `/v2/${name}/manifests/${digest}`, 'Docker-Content-Digest': digest, 'Content-Length': '0' })
          .end();
        return;
      }
      case 'DELETE': {
        requireDelete();
        if (ref.tag !== undefined) {
          await repo.tags.untag(ref.tag);
        } else {
          // MANIFEST_UNKNOWN (404) only when there was no revision to remove. From here on
          // the revision is gone, so the answer is 202 and its event goes out, whatever
          // happens to its tags: as Distribution, they are looked up after the delete (the
          // tag links still name the digest) and each removed with an event of its own.
          await repo.manifests.delete(ref.digest);
          for (const tag of await raw.tags.lookup(ref.digest)) {
            try {
              await repo.tags.untag(tag);
            } catch (err) {
              // Untagged meanwhile by a concurrent DELETE, which reports it; anything else leaves a
              // tag naming a revision that is gone (read as MANIFEST_UNKNOWN), worth a log line.
              if (!isRegistryError(err, 'MANIFEST_UNKNOWN')) logError(err as Error);
            }
          }
        }
        res.status(202).set('Content-Length', '0').end();
        return;
      }
      default:
        throw unsupported(req);
    }
  }

  /** Blobs by digest. Events: GET and HEAD pull (a HEAD opens without reading), DELETE deletes. */
  async function blobRoute(req: Request, res: Response, name: string, digest: string): Promise<void> {
    const { raw, repo } = repositoryFor(req, name);
    parseDigest(digest);
    switch (req.method) {
      case 'GET':
      case 'HEAD': {
        // A range that cannot be served is refused before the evented open: nothing is pulled.
        const unservable =
          req.method === 'GET' && req.headers.range !== undefined && parseRange(req.headers.range, (await raw.blobs.stat(digest)).size ?? 0) === 'unsatisfiable';
        const blob = unservable ? await raw.blobs.open(digest) : await repo.blobs.open(digest);
        const size = blob.descriptor.size ?? 0;
        res.set({
          'Content-Type': 'application/octet-stream',
          'Docker-Content-Digest': digest,
          'Accept-Ranges': 'bytes',
          ETag: `"${digest}"`,
          'Cache-Control': 'max-age=31536000',
        });
        // One range per request is enough for registry clients (resuming a pull); others get the whole blob.
        const range = req.method === 'GET' ? parseRange(req.headers.range, size) : undefined;
        if (range === 'unsatisfiable') {
          res.status(416).set({ 'Content-Range': `bytes */${size}`, 'Content-Type': 'text/plain' }).end('requested range not satisfiable\n');
          return;
        }
        if (range) {
          res.status(206).set({ 'Content-Range': `bytes ${range.start}-${range.end}/${size}`, 'Content-Length': String(range.end - range.start + 1) });
        } else {
          res.status(200).set('Content-Length', String(size));
        }
        if (req.method === 'HEAD' || size === 0) {
          res.end();
          return;
        }
        await pipeline(blob.read(range), res);
        return;
      }
      case 'DELETE':
        requireDelete();
        await repo.blobs.delete(digest);
        res.status(202).set('Content-Length', '0').end();
        return;
      default:
        throw unsupported(req);
    }
  }

  const uploadHeaders = (res: Response, name: string, id: string, size: number) =>
    res.set({ Location: `/v2/${name}/blobs/uploads/${id}`, 'Docker-Upload-UUID': id, Range: uploadRange(size), 'Content-Length': '0' });

  const blobCreated = (res: Response, name: string, digest: string) =>
    res.status(201).set({ Location: `/v2/${name}/blobs/${digest}`, 'Docker-Content-Digest': digest, 'Content-Length': '0' }).end();

  /**
   * `POST /blobs/uploads/`: a mount (`?mount=&from=`, a mount event), a monolithic upload
   * (`?digest=`, a push event once verified), or a new session (202, no event).
   */
  async function startUpload(req: Request, res: Response, name: string): Promise<void> {
    const { raw, repo } = repositoryFor(req, name);
    const mount = queryString(req, 'mount');
    const from = queryString(req, 'from');
    const digest = queryString(req, 'digest');
    if (mount !== undefined && from !== undefined) {
      parseDigest(mount);
      checkName(from);
      try {
        await repo.blobs.mount(mount, from);
        blobCreated(res, name, mount);
        return;
      } catch (err) {
        // Not in `from` (or not visible there): the client falls back to uploading.
        if (!isRegistryError(err, 'BLOB_UNKNOWN')) throw err;
      }
    } else if (digest !== undefined) {
      parseDigest(digest);
      const id = await raw.uploads.start();
      // New, so free; held so that the purger leaves it alone however long the body takes.
      const release = raw.uploads.claim(id);
      try {
        await raw.uploads.append(id, req);
        await repo.blobs.commit(id, digest);
      } catch (err) {
        await raw.uploads.cancel(id).catch(() => undefined);
        throw err;
      } finally {
        release?.();
      }
      blobCreated(res, name, digest);
      return;
    }
    const id = await raw.uploads.start();
    uploadHeaders(res.status(202), name, id, 0).end();
  }

  /** Checks `Content-Range` (`start-end`) of a chunk against the bytes received so far; 416 when out of order. */
  const checkChunk = (req: Request, res: Response, name: string, id: string, size: number): void => {
    const header = req.headers['content-range'];
    if (header === undefined) return;
    const m = header.match(/^(?:bytes )?(\d+)-(\d+)$/);
    const length = req.headers['content-length'] === undefined ? undefined : Number(req.headers['content-length']);
    const problem = !m
      ? `malformed Content-Range ${JSON.stringify(header)}; expected <start>-<end>`
      : Number(m[1]) !== size
        ? `Content-Range starts at ${m[1]}, but ${size} bytes have been received; the next chunk must start at ${size}`
        : Number(m[2]) < Number(m[1])
          ? `Content-Range ${header} ends before it starts`
          : length !== undefined && length !== Number(m[2]) - Number(m[1]) + 1
            ? `Content-Range ${header} does not match Content-Length ${length}`
            : undefined;
    if (problem) {
      // The client resumes from the Range it is told, as the spec asks.
      uploadHeaders(res, name, id, size);
      res.removeHeader('Content-Length');
      throw new RegistryError('BLOB_UPLOAD_INVALID', `blob upload invalid: ${problem}`, { range: header, received: size }, 416);
    }
  };

  /**
   * An upload session: status (GET), chunks (PATCH), completion (PUT, a push event), cancel
   * (DELETE). Only completion emits. One request at a time sends bytes to a session: a
   * PATCH or PUT while another is under way cannot follow on from it, and is answered 416
   * with the session's `Range` so far, as a chunk that does not follow (without reading its body).
   */
  async function uploadRoute(req: Request, res: Response, name: string, id: string): Promise<void> {
    const { raw } = repositoryFor(req, name);
    if (req.method !== 'PATCH' && req.method !== 'PUT') return sessionRoute(req, res, name, id, await raw.uploads.size(id));
    const release = raw.uploads.claim(id);
    if (!release) {
      const size = await raw.uploads.size(id);
      uploadHeaders(res, name, id, size);
      res.removeHeader('Content-Length');
      const message = 'blob upload invalid: another request is sending data to this upload; ask its status and resume from its Range';
      throw new RegistryError('BLOB_UPLOAD_INVALID', message, { received: size }, 416);
    }
    try {
      // The size is read once the session is ours: nobody else adds bytes until it is released.
      await sessionRoute(req, res, name, id, await raw.uploads.size(id));
    } finally {
      release();
    }
  }

  async function sessionRoute(req: Request, res: Response, name: string, id: string, size: number): Promise<void> {
    const { raw, repo } = repositoryFor(req, name);
    switch (req.method) {
      case 'GET':
        uploadHeaders(res.status(204), name, id, size).end();
        return;
      case 'PATCH': {
        checkChunk(req, res, name, id, size);
        const newSize = await raw.uploads.append(id, req);
        uploadHeaders(res.status(202), name, id, newSize).end();
        return;
      }
      case 'PUT': {
        const digest = queryString(req, 'digest');
        if (digest === undefined) throw new RegistryError('DIGEST_INVALID', 'digest invalid: the digest query parameter is required to complete an upload');
        parseDigest(digest);
        checkChunk(req, res, name, id, size);
        await raw.uploads.append(id, req);
        try {
          await repo.blobs.commit(id, digest);
        } catch (err) {
          // As Distribution: a failed completion ends the session.
          if (isRegistryError(err, 'DIGEST_INVALID')) await raw.uploads.cancel(id).catch(() => undefined);
          throw err;
        }
        blobCreated(res, name, digest);
        return;
      }
      case 'DELETE':
        await raw.uploads.cancel(id);
        res.status(204).end();
        return;
      default:
        throw unsupported(req);
    }
  }

  return app;
}

function definedOnly<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}
