import { createHash } from 'node:crypto';
import type { Descriptor } from './event';

/** A manifest as stored: its media type and exact bytes (the digest is over these bytes). */
export interface Manifest {
  mediaType: string;
  payload: Buffer;
}

export interface StoredManifest extends Manifest {
  digest: string;
}

export const MANIFEST_MEDIA_TYPES = {
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerManifestList: 'application/vnd.docker.distribution.manifest.list.v2+json',
} as const;

/** Thrown for a manifest whose bytes do not parse as the media type it claims. */
export class ManifestFormatError extends Error {
  override readonly name = 'ManifestFormatError';
}

export interface ManifestDescription {
  digest: string;
  size: number;
  /** What the manifest points at: config and layers, or the manifests of an index. */
  references: Descriptor[];
}

/** The sha256 digest of some bytes, as `sha256:<hex>`. */
export function sha256Digest(bytes: Buffer): string {
  return 'sha256:' + createHash('sha256').update(bytes).digest('hex');
}

/**
 * Digest, size and references of a manifest, as Distribution's bridge reports them.
 * `digest` may be given when the caller already knows it (a sha512 digest, say).
 * Without `withReferences` the manifest is not parsed and `references` is empty.
 */
export function describeManifest(manifest: Manifest, digest?: string, withReferences = true): ManifestDescription {
  return {
    digest: digest ?? sha256Digest(manifest.payload),
    size: manifest.payload.length,
    references: withReferences ? manifestReferences(manifest) : [],
  };
}

/** The descriptors a manifest refers to, in the order Distribution lists them. */
export function manifestReferences(manifest: Manifest): Descriptor[] {
  let doc: Record<string, unknown>;
  try {
    doc = JSON.parse(manifest.payload.toString('utf8'));
  } catch (err) {
    throw new ManifestFormatError(`manifest is not valid JSON: ${(err as Error).message}`);
  }
  if (typeof doc !== 'object' || doc === null) throw new ManifestFormatError('manifest is not a JSON object');
  const list = (field: string): Descriptor[] => {
    const v = doc[field];
    if (v === undefined) return [];
    if (!Array.isArray(v)) throw new ManifestFormatError(`manifest field "${field}" must be an array`);
    return v.map((d) => descriptorOf(d, field));
  };
  switch (manifest.mediaType) {
    case MANIFEST_MEDIA_TYPES.ociIndex:
    case MANIFEST_MEDIA_TYPES.dockerManifestList:
      return list('manifests');
    case MANIFEST_MEDIA_TYPES.ociManifest:
    case MANIFEST_MEDIA_TYPES.dockerManifest:
      return [...(doc.config ? [descriptorOf(doc.config, 'config')] : []), ...list('layers')];
    default:
      return [];
  }
}

function descriptorOf(value: unknown, field: string): Descriptor {
  if (typeof value !== 'object' || value === null) {
    throw new ManifestFormatError(`manifest field "${field}" must hold descriptors`);
  }
  const d = value as Record<string, unknown>;
  const out: Descriptor = {};
  if (typeof d.mediaType === 'string') out.mediaType = d.mediaType;
  if (typeof d.size === 'number') out.size = d.size;
  if (typeof d.digest === 'string') out.digest = d.digest;
  if (Array.isArray(d.urls)) out.urls = d.urls as string[];
  if (d.annotations && typeof d.annotations === 'object') out.annotations = d.annotations as Record<string, string>;
  if (d.platform && typeof d.platform === 'object') out.platform = d.platform as Descriptor['platform'];
  if (typeof d.artifactType === 'string') out.artifactType = d.artifactType;
  return out;
}
