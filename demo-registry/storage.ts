import { createReadStream, createWriteStream } from 'node:fs';
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

async function exists(file: string): Promise<boolean> {
  try {
    await fs.stat(file);
    return true;
  } catch {
    return false;
  }
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

async function readLink(file: string): Promise<string | undefined> {
  try {
    return (await fs.readFile(file, 'utf8')).trim();
  } catch {
    return undefined;
  }
}

function digestPath(digest: string): string {
  const { algorithm, hex } = parseDigest(digest);
  return path.join(algorithm, hex);
}

/** Content-addressed storage of all repositories in one directory. */
export class FilesystemStorage {
  readonly root: string;

  constructor(rootDirectory: string) {
    this.root = path.resolve(rootDirectory);
  }

  /** Creates the root directory if needed. */
  async init(): Promise<void> {
    await fs.mkdir(path.join(this.root, 'repositories'), { recursive: true });
    await fs.mkdir(path.join(this.root, 'blobs'), { recursive: true });
  }

  /** A repository by name (validated; NAME_INVALID otherwise), existing or not. */
  repository(name: string): FilesystemRepository {
    return new FilesystemRepository(this, checkName(name));
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
    if (!(await exists(this.link(digest)))) throw this.unknown(digest);
    try {
      const st = await fs.stat(this.repo.storage.blobFile(digest));
      return { mediaType: BLOB_MEDIA_TYPE, size: st.size, digest };
    } catch {
      throw this.unknown(digest);
    }
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
  }
}

export class FilesystemManifests {
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

  async get(ref: ManifestRef): Promise<StoredManifest> {
    const digest = ref.tag !== undefined ? await this.repo.tags.resolve(ref.tag) : ref.digest;
    if (digest === undefined) throw this.unknown(ref.tag ?? '');
    parseDigest(digest);
    if (!(await this.has(digest))) throw this.unknown(ref.tag ?? digest);
    try {
      const payload = await fs.readFile(this.repo.storage.blobFile(digest));
      const mediaType = (await fs.readFile(path.join(this.revision(digest), 'mediatype'), 'utf8')).trim();
      return { mediaType, payload, digest };
    } catch {
      throw this.unknown(ref.tag ?? digest);
    }
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
    if (options.tag !== undefined) await this.repo.tags.tag(options.tag, digest);
    return digest;
  }

  /** Deletes the revision; tags that pointed at it are left for the caller to untag. */
  async delete(digest: string): Promise<void> {
    parseDigest(digest);
    if (!(await this.has(digest))) throw this.unknown(digest);
    await fs.rm(this.revision(digest), { recursive: true, force: true });
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

  async untag(tag: string): Promise<void> {
    if ((await this.resolve(tag)) === undefined) {
      throw new RegistryError('MANIFEST_UNKNOWN', `manifest unknown: tag ${tag} not in ${this.repo.name}`, { tag });
    }
    await fs.rm(this.dir(tag), { recursive: true, force: true });
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

  /** Appends a stream to the upload; resolves to the new size. */
  async append(id: string, body: NodeJS.ReadableStream): Promise<number> {
    const file = await this.dataFile(id);
    await pipeline(body, createWriteStream(file, { flags: 'a' }));
    return (await fs.stat(file)).size;
  }

  /** Ends a session and drops its data; BLOB_UPLOAD_UNKNOWN if there is none. */
  async cancel(id: string): Promise<void> {
    await this.dataFile(id);
    await fs.rm(this.dir(id), { recursive: true, force: true });
  }
}
