import type { Descriptor } from '../model/event';
import type { Manifest, StoredManifest } from '../model/manifest';

export type { Manifest, StoredManifest };

/** Names a manifest by tag or by digest. */
export type ManifestRef = { tag: string; digest?: undefined } | { digest: string; tag?: undefined };

export interface ManifestService {
  /** Fetches a manifest for a client (GET and HEAD alike): a pull. */
  get(ref: ManifestRef): Promise<StoredManifest>;
  /** Stores a manifest and, with `tag`, points the tag at it; resolves to its digest: a push. */
  put(manifest: Manifest, options?: { tag?: string }): Promise<string>;
  /** Deletes a manifest by digest (the caller untags the tags that pointed at it). */
  delete(digest: string): Promise<void>;
}

/** A blob opened for a client. `read` streams its bytes, or an inclusive byte range. */
export interface Blob {
  descriptor: Descriptor;
  read(range?: { start: number; end: number }): NodeJS.ReadableStream;
}

export interface BlobService {
  /** Opens a blob for a client (GET and HEAD alike): a pull. */
  open(digest: string): Promise<Blob>;
  /** Completes an upload session as the blob `digest`: a push. */
  commit(uploadId: string, digest: string): Promise<Descriptor>;
  /** Links a blob of repository `from` into this one without copying it: a mount. */
  mount(digest: string, from: string): Promise<Descriptor>;
  delete(digest: string): Promise<void>;
}

export interface TagService {
  /** Removes a tag; the manifest it pointed at stays. */
  untag(tag: string): Promise<void>;
}

/**
 * The operations of one repository that notifications are about. A registry's storage
 * implements this (and whatever else it needs: uploads, listings), and the Listener
 * decorates it so that each operation that succeeds produces its event.
 */
export interface Repository {
  readonly name: string;
  readonly manifests: ManifestService;
  readonly blobs: BlobService;
  readonly tags: TagService;
  /** Deletes the whole repository. */
  remove?(): Promise<void>;
}
