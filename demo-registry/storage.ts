import {
  access as accessCallback,
  close as closeCallback,
  createReadStream,
  createWriteStream,
  open as openCallback,
  read as readCallback,
  readFile as readFileCallback,
  stat as statCallback,
} from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { v4 as uuidv4 } from 'uuid';
import { BLOB_MEDIA_TYPE, type Blob, type Descriptor, type Manifest, type ManifestRef, type Repository, type StoredManifest } from '../lib';
import { RegistryError } from './errors';
import { parseManifest } from './manifest-format';
import { checkName, digestOf, hasherFor, parseDigest, type DigestAlgorithm } from './reference';

/*
 * Layout under the root directory, after Distribution's:
 *   blobs/<alg>/<hex[0:2]>/<hex>/data                          content, shared by repositories
 *   repositories/<name>/_layers/<alg>/<hex>/link                 blob linked into a repository
 *   repositories/<name>/_manifests/revisions/<alg>/<hex>/link    manifest revision (+ mediatype)
 *   repositories/<name>/_manifests/tags/<tag>/current/link       tag -> manifest digest
 *   repositories/<name>/_uploads/<uuid>/data                     upload in progress
 * A link file holds a digest; its presence is what makes the thing exist.
 */

// The read path uses the callback API: each call is one request to libuv, with no FileHandle
// object to create, track and close as `fs.promises` does (open+fstat+read+close per readFile).

/** Whether `file` exists: one access(2), no Stats object. */
function exists(file: string): Promise<boolean> {
  return new Promise((resolve) => accessCallback(file, (err) => resolve(!err)));
}

/** A whole file's bytes. */
function readWhole(file: string): Promise<Buffer> {
  return new Promise((resolve, reject) => readFileCallback(file, (err, data) => (err ? reject(err) : resolve(data))));
}

/** Bytes `readSmall` reads at once: a link (one digest) or a media type fits. */
const SMALL_FILE_BYTES = 512;

/** A small file (a link, a media type) with open, one read and close: no fstat as readFile does. */
function readSmall(file: string): Promise<Buffer> {
  return new Promise((resolve, reject) =>
    openCallback(file, 'r', (openErr, fd) => {
      if (openErr) return reject(openErr);
      const buf = Buffer.allocUnsafe(SMALL_FILE_BYTES);
      readCallback(fd, buf, 0, SMALL_FILE_BYTES, 0, (readErr, n) =>
        closeCallback(fd, () => {
          if (readErr) reject(readErr);
          // Filled the buffer: not as small as expected, so read all of it.
          else if (n === SMALL_FILE_BYTES) readWhole(file).then(resolve, reject);
          else resolve(buf.subarray(0, n));
        }),
      );
    }),
  );
}

/** A file's size in bytes. */
function sizeOf(file: string): Promise<number> {
  return new Promise((resolve, reject) => statCallback(file, (err, st) => (err ? reject(err) : resolve(st.size))));
}

/** Writes a file so that readers see the old content or the new one, never a part. */
export async function writeFileAtomic(file: string, data: string | Buffer): Promise<void> {
  await fs.mkdir(path.dirname(file), { recursive: true });
  const tmp = `${file}.tmp-${uuidv4()}`;
  try {
    await fs.writeFile(tmp, data);
    await fs.rename(tmp, file);
  } catch (err) {
    await fs.rm(tmp, { force: true });
    throw err;
  }
}

/**
 * Removes `dir` if this call is the one that takes it away: it is first renamed into the
 * storage's `_deleting/` folder, which succeeds for one caller only, so two requests that
 * remove the same tag or revision at once cannot both report it. False when it was gone.
 */
async function removeOnce(storage: FilesystemStorage, dir: string): Promise<boolean> {
  const aside = path.join(storage.root, '_deleting', uuidv4());
  await fs.mkdir(path.dirname(aside), { recursive: true });
  try {
    await fs.rename(dir, aside);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
  await fs.rm(aside, { recursive: true, force: true });
  return true;
}

async function readLink(file: string): Promise<string | undefined> {
  try {
    return (await readSmall(file)).toString('utf8').trim();
  } catch {
    return undefined;
  }
}

function digestPath(digest: string): string {
  const { algorithm, hex } = parseDigest(digest);
  return path.join(algorithm, hex);
}

/** Bounds of the in-memory cache of manifests and blob descriptors. */
export interface ContentCacheOptions {
  /** Most entries, manifests and blob descriptors together; 0 disables the cache. @default 10000 */
  maxEntries?: number;
  /** Most bytes held: manifest payloads plus a fixed charge per entry; a larger manifest is not cached. @default 32 MiB */
  maxBytes?: number;
}

export const DEFAULT_CONTENT_CACHE = {
  maxEntries: 10_000,
  maxBytes: 32 * 1024 * 1024, // 32 MiB
} as const;

/** What an entry costs besides its payload (key, object, map slot), for the byte bound. */
export const CACHE_ENTRY_BYTES = 256;

/**
 * A bounded LRU map for what never changes under its key: manifest payloads and media types
 * of one repository's revisions, and blob sizes (content-addressed), as Distribution's
 * `storage.cache.blobdescriptor: inmemory`. It never answers whether something exists: the
 * storage still checks the repository's link on every read, so a link removed by any process
 * is seen at once. This process's own writes and deletes drop the entries they concern.
 *
 * Reads that race an invalidation must not put back what was just dropped: a reader takes
 * `mark()` before it looks at the disk and passes it to `set`, which ignores the value if
 * anything was invalidated since.
 */
export class ContentCache {
  readonly maxEntries: number;
  readonly maxBytes: number;
  private readonly entries = new Map<string, { value: unknown; bytes: number }>();
  private heldBytes = 0;
  private generation = 0;

  constructor(options: ContentCacheOptions = {}) {
    this.maxEntries = options.maxEntries ?? DEFAULT_CONTENT_CACHE.maxEntries;
    this.maxBytes = options.maxBytes ?? DEFAULT_CONTENT_CACHE.maxBytes;
  }

  /** Entries held. */
  get size(): number {
    return this.entries.size;
  }

  /** Bytes charged for the entries held. */
  get bytes(): number {
    return this.heldBytes;
  }

  /** Whether `key` is held (without making it recently used). */
  has(key: string): boolean {
    return this.entries.has(key);
  }

  /** Take before reading from disk; pass to `set`. */
  mark(): number {
    return this.generation;
  }

  /** The value under `key`, now the most recently used; undefined when not held. */
  get<T>(key: string): T | undefined {
    const entry = this.entries.get(key);
    if (entry === undefined) return undefined;
    this.entries.delete(key);
    this.entries.set(key, entry);
    return entry.value as T;
  }

  /** Holds `value` (charged `bytes`) unless something was invalidated since `mark`; evicts the least recently used beyond the bounds. */
  set(key: string, value: unknown, bytes: number, mark: number): void {
    if (mark !== this.generation || bytes > this.maxBytes || this.maxEntries <= 0) return;
    this.drop(key);
    this.entries.set(key, { value, bytes });
    this.heldBytes += bytes;
    while (this.entries.size > this.maxEntries || this.heldBytes > this.maxBytes) {
      this.drop(this.entries.keys().next().value as string);
    }
  }

  /** Drops `key`, and keeps reads in flight from putting it back. */
  invalidate(key: string): void {
    this.generation++;
    this.drop(key);
  }

  /** Drops every key that starts with `prefix` (a repository's entries when it is deleted). */
  invalidatePrefix(prefix: string): void {
    this.generation++;
    for (const key of [...this.entries.keys()]) if (key.startsWith(prefix)) this.drop(key);
  }

  private drop(key: string): void {
    const entry = this.entries.get(key);
    if (entry === undefined) return;
    this.entries.delete(key);
    this.heldBytes -= entry.bytes;
  }
}

/** Cache key of a manifest revision of one repository (names never hold "@"). */
const manifestKey = (name: string, digest: string) => `manifest ${name}@${digest}`;
const repositoryManifestsPrefix = (name: string) => `manifest ${name}@`;
/** Cache key of a blob's size; content-addressed, so the same in every repository. */
const blobKey = (digest: string) => `blob ${digest}`;

export interface FilesystemStorageOptions {
  /** The in-memory cache of manifests and blob descriptors. @default DEFAULT_CONTENT_CACHE */
  cache?: ContentCacheOptions;
}

/** Content-addressed storage of all repositories in one directory. */
export class FilesystemStorage {
  readonly root: string;
  /** Manifests and blob descriptors read by this process; see ContentCache. */
  readonly cache: ContentCache;
  /** Upload sessions a request of this process is writing to, as `<name>@<id>`. */
  private readonly uploadsInUse = new Set<string>();

  constructor(rootDirectory: string, options: FilesystemStorageOptions = {}) {
    this.root = path.resolve(rootDirectory);
    this.cache = new ContentCache(options.cache);
  }

  /** Creates the root directory if needed. */
  async init(): Promise<void> {
    await fs.mkdir(path.join(this.root, 'repositories'), { recursive: true });
    await fs.mkdir(path.join(this.root, 'blobs'), { recursive: true });
    // What a crash left half removed (see removeOnce).
    await fs.rm(path.join(this.root, '_deleting'), { recursive: true, force: true });
  }

  /** A repository by name (validated; NAME_INVALID otherwise), existing or not. */
  repository(name: string): FilesystemRepository {
    return new FilesystemRepository(this, checkName(name));
  }

  /**
   * Takes the upload session `id` of repository `name` for one request; undefined while
   * another holds it. The returned function gives it back.
   */
  claimUpload(name: string, id: string): (() => void) | undefined {
    const key = `${name}@${id}`;
    if (this.uploadsInUse.has(key)) return undefined;
    this.uploadsInUse.add(key);
    return () => this.uploadsInUse.delete(key);
  }

  /** Whether a request is writing to the upload session (the upload purger leaves it alone). */
  uploadInUse(name: string, id: string): boolean {
    return this.uploadsInUse.has(`${name}@${id}`);
  }

  blobFile(digest: string): string {
    const { algorithm, hex } = parseDigest(digest);
    return path.join(this.root, 'blobs', algorithm, hex.slice(0, 2), hex, 'data');
  }

  repositoryDir(name: string): string {
    return path.join(this.root, 'repositories', ...name.split('/'));
  }

  /** Names of all repositories that hold a blob or a manifest, sorted. */
  async catalog(): Promise<string[]> {
    const names: string[] = [];
    const walk = async (dir: string, prefix: string): Promise<void> => {
      let entries: import('node:fs').Dirent[];
      try {
        entries = await fs.readdir(dir, { withFileTypes: true });
      } catch {
        return;
      }
      if (entries.some((e) => e.name === '_manifests' || e.name === '_layers')) names.push(prefix);
      for (const e of entries) {
        // Repository components never start with "_", so this skips our own folders.
        if (e.isDirectory() && !e.name.startsWith('_')) await walk(path.join(dir, e.name), prefix ? `${prefix}/${e.name}` : e.name);
      }
    };
    await walk(path.join(this.root, 'repositories'), '');
    return names.sort();
  }
}

/** One repository of a FilesystemStorage: the `Repository` operations plus uploads and listings. */
export class FilesystemRepository implements Repository {
  readonly manifests: FilesystemManifests;
  readonly blobs: FilesystemBlobs;
  readonly tags: FilesystemTags;
  readonly uploads: FilesystemUploads;
  readonly dir: string;

  constructor(
    readonly storage: FilesystemStorage,
    readonly name: string,
  ) {
    this.dir = storage.repositoryDir(name);
    this.manifests = new FilesystemManifests(this);
    this.blobs = new FilesystemBlobs(this);
    this.tags = new FilesystemTags(this);
    this.uploads = new FilesystemUploads(this);
  }

  /** Whether anything was ever pushed here (and not removed). */
  async exists(): Promise<boolean> {
    return (await exists(path.join(this.dir, '_manifests'))) || (await exists(path.join(this.dir, '_layers')));
  }

  /** Deletes the repository's links, tags and uploads; shared content stays. */
  async remove(): Promise<void> {
    if (!(await this.exists())) throw new RegistryError('NAME_UNKNOWN', `repository name not known to registry: ${this.name}`, { name: this.name });
    await fs.rm(this.dir, { recursive: true, force: true });
    this.storage.cache.invalidatePrefix(repositoryManifestsPrefix(this.name));
  }
}

export class FilesystemBlobs {
  constructor(private readonly repo: FilesystemRepository) {}

  private link(digest: string): string {
    return path.join(this.repo.dir, '_layers', digestPath(digest), 'link');
  }

  private unknown(digest: string): RegistryError {
    return new RegistryError('BLOB_UNKNOWN', `blob unknown to registry: ${digest} in ${this.repo.name}`, { digest });
  }

  /** The blob's descriptor if this repository holds it; BLOB_UNKNOWN otherwise. Emits nothing. */
  async stat(digest: string): Promise<Descriptor> {
    parseDigest(digest);
    const cache = this.repo.storage.cache;
    const mark = cache.mark();
    // The link says whether this repository holds the blob: checked on every read, cached or not.
    if (!(await exists(this.link(digest)))) throw this.unknown(digest);
    let size = cache.get<number>(blobKey(digest));
    if (size === undefined) {
      try {
        size = await sizeOf(this.repo.storage.blobFile(digest));
      } catch {
        throw this.unknown(digest);
      }
      cache.set(blobKey(digest), size, CACHE_ENTRY_BYTES, mark);
    }
    return { mediaType: BLOB_MEDIA_TYPE, size, digest };
  }

  async open(digest: string): Promise<Blob> {
    const descriptor = await this.stat(digest);
    const file = this.repo.storage.blobFile(digest);
    return { descriptor, read: (range) => createReadStream(file, range ? { start: range.start, end: range.end } : {}) };
  }

  /** Verifies an upload against `digest` and makes it this repository's blob. */
  async commit(uploadId: string, digest: string): Promise<Descriptor> {
    parseDigest(digest);
    const data = await this.repo.uploads.dataFile(uploadId);
    const hash = hasherFor(digest);
    await pipeline(createReadStream(data), hash);
    const actual = `${digest.slice(0, digest.indexOf(':'))}:${hash.digest('hex')}`;
    if (actual !== digest) {
      throw new RegistryError('DIGEST_INVALID', `provided digest did not match uploaded content: expected ${digest}, content is ${actual}`, {
        digest,
        actual,
      });
    }
    const target = this.repo.storage.blobFile(digest);
    await fs.mkdir(path.dirname(target), { recursive: true });
    // Same content under the same name: a rename over an existing blob changes nothing.
    await fs.rename(data, target);
    await writeFileAtomic(this.link(digest), digest);
    await fs.rm(path.dirname(data), { recursive: true, force: true });
    return this.stat(digest);
  }

  /** Stores small content (manifests) directly; returns its digest. Links nothing. */
  async putContent(bytes: Buffer, algorithm: DigestAlgorithm = 'sha256'): Promise<string> {
    const digest = digestOf(bytes, algorithm);
    const target = this.repo.storage.blobFile(digest);
    if (!(await exists(target))) await writeFileAtomic(target, bytes);
    return digest;
  }

  async mount(digest: string, from: string): Promise<Descriptor> {
    const source = this.repo.storage.repository(from);
    await source.blobs.stat(digest);
    await writeFileAtomic(this.link(digest), digest);
    return this.stat(digest);
  }

  /** Unlinks the blob from this repository; its content stays for others (a GC would reclaim it). */
  async delete(digest: string): Promise<void> {
    await this.stat(digest);
    await fs.rm(path.dirname(this.link(digest)), { recursive: true, force: true });
    this.repo.storage.cache.invalidate(blobKey(digest));
  }
}

export class FilesystemManifests {
  /** Set by `reuseOnce`: what the next `get` of the same reference answers. */
  private reuse?: { ref: ManifestRef; manifest: StoredManifest };

  constructor(private readonly repo: FilesystemRepository) {}

  private revision(digest: string): string {
    return path.join(this.repo.dir, '_manifests', 'revisions', digestPath(digest));
  }

  private unknown(ref: string): RegistryError {
    return new RegistryError('MANIFEST_UNKNOWN', `manifest unknown: ${ref} in ${this.repo.name}`, { name: this.repo.name, reference: ref });
  }

  /** Whether this repository holds the manifest revision `digest`. */
  async has(digest: string): Promise<boolean> {
    return exists(path.join(this.revision(digest), 'link'));
  }

  /**
   * Makes the next `get` of `ref` on this object answer `manifest` without reading anything:
   * for a request that has just read the manifest from this object (to negotiate its type)
   * and now gets it again through the evented view of the same repository, so that each
   * file is read once per request. Any other call of `get` clears it.
   */
  reuseOnce(ref: ManifestRef, manifest: StoredManifest): void {
    this.reuse = { ref, manifest };
  }

  /**
   * The manifest a tag or digest names. The tag's link (mutable) and the revision's link
   * (whether this repository holds it) are read on every call; the payload and media type,
   * immutable under the digest, come from the storage's cache when held. The returned
   * payload may be shared with the cache: callers must not modify it.
   */
  async get(ref: ManifestRef): Promise<StoredManifest> {
    const reuse = this.reuse;
    if (reuse !== undefined) {
      this.reuse = undefined;
      if (reuse.ref.tag === ref.tag && reuse.ref.digest === ref.digest) return reuse.manifest;
    }
    const cache = this.repo.storage.cache;
    const mark = cache.mark();
    const digest = ref.tag !== undefined ? await this.repo.tags.resolve(ref.tag) : ref.digest;
    if (digest === undefined) throw this.unknown(ref.tag ?? '');
    parseDigest(digest);
    if (!(await this.has(digest))) throw this.unknown(ref.tag ?? digest);
    const key = manifestKey(this.repo.name, digest);
    const cached = cache.get<{ mediaType: string; payload: Buffer }>(key);
    if (cached !== undefined) return { mediaType: cached.mediaType, payload: cached.payload, digest };
    let payload: Buffer;
    let mediaType: string;
    try {
      const [content, type] = await Promise.all([readWhole(this.repo.storage.blobFile(digest)), readSmall(path.join(this.revision(digest), 'mediatype'))]);
      payload = content;
      mediaType = type.toString('utf8').trim();
    } catch {
      throw this.unknown(ref.tag ?? digest);
    }
    cache.set(key, { mediaType, payload }, payload.length + CACHE_ENTRY_BYTES, mark);
    return { mediaType, payload, digest };
  }

  /**
   * Checks and stores a manifest: well-formed for its media type, every blob and child
   * manifest it names present in this repository (MANIFEST_BLOB_UNKNOWN otherwise), and,
   * when `digest` is given, matching it (DIGEST_INVALID). With `tag`, points the tag at it.
   */
  async put(manifest: Manifest, options: { tag?: string; digest?: string } = {}): Promise<string> {
    const content = parseManifest(manifest.mediaType, manifest.payload);
    const algorithm = options.digest ? parseDigest(options.digest).algorithm : 'sha256';
    const digest = digestOf(manifest.payload, algorithm);
    if (options.digest && options.digest !== digest) {
      throw new RegistryError('DIGEST_INVALID', `manifest digest ${digest} does not match the reference ${options.digest}`, {
        digest: options.digest,
        actual: digest,
      });
    }
    for (const blob of content.blobs) {
      if (!(await exists(path.join(this.repo.dir, '_layers', digestPath(blob), 'link')))) {
        throw new RegistryError('MANIFEST_BLOB_UNKNOWN', `blob unknown to registry: ${blob} is referenced by the manifest but not in ${this.repo.name}`, {
          digest: blob,
        });
      }
    }
    for (const child of content.manifests) {
      if (!(await this.has(child))) {
        throw new RegistryError('MANIFEST_BLOB_UNKNOWN', `manifest unknown: ${child} is referenced by the index but not in ${this.repo.name}`, {
          digest: child,
        });
      }
    }
    await this.repo.blobs.putContent(manifest.payload, algorithm);
    const rev = this.revision(digest);
    await writeFileAtomic(path.join(rev, 'mediatype'), content.mediaType);
    await writeFileAtomic(path.join(rev, 'link'), digest);
    // The same bytes may have been stored with another media type before.
    this.repo.storage.cache.invalidate(manifestKey(this.repo.name, digest));
    if (options.tag !== undefined) await this.repo.tags.tag(options.tag, digest);
    return digest;
  }

  /**
   * Deletes the revision; tags that pointed at it are left for the caller to untag.
   * MANIFEST_UNKNOWN when it is not there, or when a concurrent delete took it first.
   */
  async delete(digest: string): Promise<void> {
    parseDigest(digest);
    if (!(await this.has(digest))) throw this.unknown(digest);
    const removed = await removeOnce(this.repo.storage, this.revision(digest));
    this.repo.storage.cache.invalidate(manifestKey(this.repo.name, digest));
    if (!removed) throw this.unknown(digest);
  }
}

export class FilesystemTags {
  constructor(private readonly repo: FilesystemRepository) {}

  private dir(tag?: string): string {
    const tags = path.join(this.repo.dir, '_manifests', 'tags');
    return tag === undefined ? tags : path.join(tags, tag);
  }

  /** The digest a tag points at, if the tag exists. */
  async resolve(tag: string): Promise<string | undefined> {
    return readLink(path.join(this.dir(tag), 'current', 'link'));
  }

  async tag(tag: string, digest: string): Promise<void> {
    await writeFileAtomic(path.join(this.dir(tag), 'current', 'link'), digest);
  }

  /** Removes the tag; MANIFEST_UNKNOWN when it is not there, or when a concurrent untag took it first. */
  async untag(tag: string): Promise<void> {
    const unknown = () => new RegistryError('MANIFEST_UNKNOWN', `manifest unknown: tag ${tag} not in ${this.repo.name}`, { tag });
    if ((await this.resolve(tag)) === undefined) throw unknown();
    if (!(await removeOnce(this.repo.storage, this.dir(tag)))) throw unknown();
  }

  /** All tags, sorted. */
  async list(): Promise<string[]> {
    try {
      const entries = await fs.readdir(this.dir(), { withFileTypes: true });
      return entries
        .filter((e) => e.isDirectory())
        .map((e) => e.name)
        .sort();
    } catch {
      return [];
    }
  }

  /** Tags that point at `digest`, sorted. */
  async lookup(digest: string): Promise<string[]> {
    const out: string[] = [];
    for (const tag of await this.list()) if ((await this.resolve(tag)) === digest) out.push(tag);
    return out;
  }
}

export class FilesystemUploads {
  constructor(private readonly repo: FilesystemRepository) {}

  private dir(id: string): string {
    return path.join(this.repo.dir, '_uploads', id);
  }

  /** The data file of an upload; BLOB_UPLOAD_UNKNOWN when there is no such session. */
  async dataFile(id: string): Promise<string> {
    // Session ids are ours (uuids); anything else cannot name a session and must not name a path.
    const file = path.join(this.dir(id), 'data');
    if (!/^[0-9a-f-]{36}$/.test(id) || !(await exists(file))) {
      throw new RegistryError('BLOB_UPLOAD_UNKNOWN', `blob upload unknown to registry: ${id} in ${this.repo.name}`, { uuid: id });
    }
    return file;
  }

  /** Starts an upload session; resolves to its id. */
  async start(): Promise<string> {
    const id = uuidv4();
    await writeFileAtomic(path.join(this.dir(id), 'startedat'), new Date().toISOString());
    await writeFileAtomic(path.join(this.dir(id), 'data'), Buffer.alloc(0));
    return id;
  }

  /** Bytes received so far. */
  async size(id: string): Promise<number> {
    return (await fs.stat(await this.dataFile(id))).size;
  }

  /**
   * Takes the session for one request (see `FilesystemStorage.claimUpload`): its bytes
   * must not interleave with another's, nor the purger remove it meanwhile.
   */
  claim(id: string): (() => void) | undefined {
    return this.repo.storage.claimUpload(this.repo.name, id);
  }

  /** Appends a stream to the upload; resolves to the new size. */
  async append(id: string, body: NodeJS.ReadableStream): Promise<number> {
    const file = await this.dataFile(id);
    await pipeline(body, createWriteStream(file, { flags: 'a' }));
    try {
      return (await fs.stat(file)).size;
    } catch (err) {
      // Cancelled while the bytes were arriving: BLOB_UPLOAD_UNKNOWN.
      await this.dataFile(id);
      throw err;
    }
  }

  /** Ends a session and drops its data; BLOB_UPLOAD_UNKNOWN if there is none. */
  async cancel(id: string): Promise<void> {
    await this.dataFile(id);
    await fs.rm(this.dir(id), { recursive: true, force: true });
  }
}
