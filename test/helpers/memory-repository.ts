import { Readable } from 'node:stream';
import { sha256Digest } from '../../lib/model/manifest';
import type { Blob, Descriptor, Manifest, ManifestRef, Repository, StoredManifest } from '../../lib';

/** A small in-memory repository for listener and middleware tests (the demo registry has the real one). */
export class MemoryRepository implements Repository {
  readonly manifestsByDigest = new Map<string, StoredManifest>();
  readonly tagMap = new Map<string, string>();
  readonly blobMap = new Map<string, Buffer>();
  readonly uploads = new Map<string, Buffer>();
  removed = false;

  constructor(
    readonly name: string,
    private readonly others: Map<string, MemoryRepository> = new Map(),
  ) {
    others.set(name, this);
  }

  readonly manifests = {
    get: async (ref: ManifestRef): Promise<StoredManifest> => {
      const digest = ref.tag !== undefined ? this.tagMap.get(ref.tag) : ref.digest;
      const m = digest && this.manifestsByDigest.get(digest);
      if (!m) throw new Error(`manifest unknown: ${ref.tag ?? ref.digest}`);
      return m;
    },
    put: async (manifest: Manifest, options?: { tag?: string }): Promise<string> => {
      JSON.parse(manifest.payload.toString());
      const digest = sha256Digest(manifest.payload);
      this.manifestsByDigest.set(digest, { ...manifest, digest });
      if (options?.tag) this.tagMap.set(options.tag, digest);
      return digest;
    },
    delete: async (digest: string): Promise<void> => {
      if (!this.manifestsByDigest.delete(digest)) throw new Error(`manifest unknown: ${digest}`);
    },
  };

  readonly blobs = {
    open: async (digest: string): Promise<Blob> => {
      const bytes = this.blobMap.get(digest);
      if (!bytes) throw new Error(`blob unknown: ${digest}`);
      return { descriptor: this.describe(digest, bytes), read: () => Readable.from(bytes) };
    },
    commit: async (uploadId: string, digest: string): Promise<Descriptor> => {
      const bytes = this.uploads.get(uploadId);
      if (!bytes) throw new Error(`upload unknown: ${uploadId}`);
      if (sha256Digest(bytes) !== digest) throw new Error(`digest invalid: ${digest}`);
      this.uploads.delete(uploadId);
      this.blobMap.set(digest, bytes);
      return this.describe(digest, bytes);
    },
    mount: async (digest: string, from: string): Promise<Descriptor> => {
      const bytes = this.others.get(from)?.blobMap.get(digest);
      if (!bytes) throw new Error(`blob unknown in ${from}: ${digest}`);
      this.blobMap.set(digest, bytes);
      return this.describe(digest, bytes);
    },
    delete: async (digest: string): Promise<void> => {
      if (!this.blobMap.delete(digest)) throw new Error(`blob unknown: ${digest}`);
    },
    /** Not watched by the listener: uploads emit nothing until committed. */
    upload: (uploadId: string, bytes: Buffer): void => {
      this.uploads.set(uploadId, bytes);
    },
  };

  readonly tags = {
    untag: async (tag: string): Promise<void> => {
      if (!this.tagMap.delete(tag)) throw new Error(`tag unknown: ${tag}`);
    },
    /** Tags pointing at a digest; not watched by the listener. */
    lookup: (digest: string): string[] => [...this.tagMap].filter(([, d]) => d === digest).map(([t]) => t),
  };

  async remove(): Promise<void> {
    this.removed = true;
  }

  private describe(digest: string, bytes: Buffer): Descriptor {
    return { mediaType: 'application/octet-stream', size: bytes.length, digest };
  }
}
