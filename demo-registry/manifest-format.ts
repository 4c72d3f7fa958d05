import { RegistryError } from './errors';
import { parseDigest } from './reference';

/** The manifest media types this registry stores and serves. */
export const MANIFEST_TYPES = {
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerManifestList: 'application/vnd.docker.distribution.manifest.list.v2+json',
} as const;

const KNOWN: readonly string[] = Object.values(MANIFEST_TYPES);
const INDEX_TYPES: readonly string[] = [MANIFEST_TYPES.ociIndex, MANIFEST_TYPES.dockerManifestList];
// Content types that say nothing about the manifest; the payload's `mediaType` decides.
const GENERIC = ['', 'application/json', 'application/octet-stream'];

/** What a manifest refers to, for checking that it is complete before it is stored. */
export interface ManifestContent {
  mediaType: string;
  /** Blobs (config and layers) the repository must hold; non-distributable layers with `urls` are left out. */
  blobs: string[];
  /** Child manifests (of an index) the repository must hold. */
  manifests: string[];
}

/** Whether `mediaType` is an index (OCI index or Docker manifest list). */
export function isIndexType(mediaType: string): boolean {
  return INDEX_TYPES.includes(mediaType);
}

function invalid(message: string, detail?: unknown): RegistryError {
  return new RegistryError('MANIFEST_INVALID', `manifest invalid: ${message}`, detail);
}

function descriptor(value: unknown, field: string): { digest: string; urls: boolean } {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw invalid(`${field} must be a descriptor object`, { field });
  const d = value as Record<string, unknown>;
  if (typeof d.mediaType !== 'string' || d.mediaType === '') throw invalid(`${field}.mediaType must be a non-empty string`, { field });
  if (typeof d.size !== 'number' || !Number.isSafeInteger(d.size) || d.size < 0) {
    throw invalid(`${field}.size must be a whole number of bytes, got ${JSON.stringify(d.size)}`, { field });
  }
  if (typeof d.digest !== 'string') throw invalid(`${field}.digest must be a string`, { field });
  try {
    parseDigest(d.digest);
  } catch (err) {
    throw invalid(`${field}.digest: ${(err as Error).message}`, { field, digest: d.digest });
  }
  return { digest: d.digest, urls: Array.isArray(d.urls) && d.urls.length > 0 };
}

function list(doc: Record<string, unknown>, field: string, required: boolean): unknown[] {
  const v = doc[field];
  if (v === undefined && !required) return [];
  if (!Array.isArray(v)) throw invalid(`"${field}" must be a list of descriptors`, { field });
  return v;
}

/**
 * Parses and checks a manifest sent with Content-Type `contentType`: JSON, schemaVersion 2,
 * a media type we know (from the header, or the payload's `mediaType` when the header is
 * generic) that agrees with the payload's, and well-formed descriptors. Throws MANIFEST_INVALID.
 */
export function parseManifest(contentType: string | undefined, payload: Buffer): ManifestContent {
  let doc: unknown;
  try {
    doc = JSON.parse(payload.toString('utf8'));
  } catch (err) {
    throw invalid(`not valid JSON: ${(err as Error).message}`);
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw invalid('expected a JSON object');
  const m = doc as Record<string, unknown>;
  if (m.schemaVersion !== 2) throw invalid(`schemaVersion must be 2, got ${JSON.stringify(m.schemaVersion)}`, { field: 'schemaVersion' });

  const header = (contentType ?? '').split(';')[0].trim().toLowerCase();
  const declared = m.mediaType;
  if (declared !== undefined && typeof declared !== 'string') throw invalid('"mediaType" must be a string', { field: 'mediaType' });
  let mediaType: string;
  if (KNOWN.includes(header)) {
    if (declared !== undefined && declared !== header) {
      throw invalid(`Content-Type ${header} does not match the payload's mediaType ${declared}`, { contentType: header, mediaType: declared });
    }
    mediaType = header;
  } else if (GENERIC.includes(header)) {
    if (declared !== undefined && KNOWN.includes(declared)) mediaType = declared;
    else if (declared === undefined && Array.isArray(m.manifests)) mediaType = MANIFEST_TYPES.ociIndex;
    else if (declared === undefined && m.config !== undefined) mediaType = MANIFEST_TYPES.ociManifest;
    else throw invalid(`unknown manifest media type ${JSON.stringify(declared ?? header)}; allowed: ${KNOWN.join(', ')}`);
  } else {
    throw invalid(`unsupported Content-Type ${JSON.stringify(header)}; allowed: ${KNOWN.join(', ')}`, { contentType: header });
  }

  if (isIndexType(mediaType)) {
    const children = list(m, 'manifests', true).map((d, i) => descriptor(d, `manifests[${i}]`));
    return { mediaType, blobs: [], manifests: children.map((c) => c.digest) };
  }
  const config = descriptor(m.config, 'config');
  const layers = list(m, 'layers', mediaType === MANIFEST_TYPES.dockerManifest).map((d, i) => descriptor(d, `layers[${i}]`));
  return {
    mediaType,
    blobs: [config, ...layers].filter((d) => !d.urls).map((d) => d.digest),
    manifests: [],
  };
}

/** Whether a client's Accept header takes `mediaType`; no Accept header takes anything. */
export function accepts(accept: string | undefined, mediaType: string): boolean {
  if (!accept || accept.trim() === '') return true;
  return accept
    .split(',')
    .map((part) => part.split(';')[0].trim().toLowerCase())
    .some((t) => t === mediaType || t === '*/*' || t === 'application/*');
}
