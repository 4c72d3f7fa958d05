import { createHash, type Hash } from 'node:crypto';
import { RegistryError } from './errors';

// One path component of a repository name, per the distribution spec:
// lowercase alphanumerics separated by one period, one or two underscores, or dashes.
const COMPONENT = '[a-z0-9]+(?:(?:\\.|_|__|-+)[a-z0-9]+)*';
const NAME = new RegExp(`^${COMPONENT}(?:/${COMPONENT})*$`);
const TAG = /^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$/;
const MAX_NAME_LENGTH = 255;

/** Hex length of each digest algorithm we accept. */
export const DIGEST_ALGORITHMS = { sha256: 64, sha512: 128 } as const;
export type DigestAlgorithm = keyof typeof DIGEST_ALGORITHMS;

/** Throws NAME_INVALID unless `name` is a repository name the spec allows. */
export function checkName(name: string): string {
  if (name.length > MAX_NAME_LENGTH) {
    throw new RegistryError('NAME_INVALID', `invalid repository name: ${name.length} characters, at most ${MAX_NAME_LENGTH} allowed`, { name });
  }
  if (!NAME.test(name)) {
    throw new RegistryError(
      'NAME_INVALID',
      `invalid repository name ${JSON.stringify(name)}: use lowercase path components of [a-z0-9] joined by ".", "_", "__" or "-", separated by "/"`,
      { name },
    );
  }
  return name;
}

/** Whether `value` is a tag the spec allows. */
export function isTag(value: string): boolean {
  return TAG.test(value);
}

/** Throws TAG_INVALID unless `tag` matches `[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`. */
export function checkTag(tag: string): string {
  if (!isTag(tag)) {
    throw new RegistryError('TAG_INVALID', `invalid tag ${JSON.stringify(tag)}: must match [a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`, { tag });
  }
  return tag;
}

/** Whether `value` looks like a digest at all (`algorithm:encoded`), valid or not. */
export function looksLikeDigest(value: string): boolean {
  return value.includes(':');
}

/** Splits a digest, throwing DIGEST_INVALID unless it is sha256 or sha512 with hex of the right length. */
export function parseDigest(digest: string): { algorithm: DigestAlgorithm; hex: string } {
  const colon = digest.indexOf(':');
  const algorithm = digest.slice(0, colon);
  const hex = digest.slice(colon + 1);
  if (colon < 0 || !(algorithm in DIGEST_ALGORITHMS)) {
    throw new RegistryError(
      'DIGEST_INVALID',
      `invalid digest ${JSON.stringify(digest)}: algorithm must be ${Object.keys(DIGEST_ALGORITHMS).join(' or ')}`,
      { digest },
    );
  }
  const length = DIGEST_ALGORITHMS[algorithm as DigestAlgorithm];
  if (hex.length !== length || !/^[a-f0-9]+$/.test(hex)) {
    throw new RegistryError('DIGEST_INVALID', `invalid digest ${JSON.stringify(digest)}: ${algorithm} needs ${length} lowercase hex characters`, {
      digest,
    });
  }
  return { algorithm: algorithm as DigestAlgorithm, hex };
}

/** Whether `value` is a digest `parseDigest` accepts. */
export function isDigest(value: string): boolean {
  try {
    parseDigest(value);
    return true;
  } catch {
    return false;
  }
}

/**
 * A manifest reference of a GET, HEAD or DELETE, as a tag or a digest; undefined when it is
 * neither a valid tag nor a valid digest. Such a reference can name no manifest, so it is
 * answered MANIFEST_UNKNOWN (404) as Distribution and the conformance suite do; only a PUT
 * refuses it as malformed (TAG_INVALID, DIGEST_INVALID).
 */
export function lookupReference(reference: string): { tag: string; digest?: undefined } | { digest: string; tag?: undefined } | undefined {
  if (looksLikeDigest(reference)) return isDigest(reference) ? { digest: reference } : undefined;
  return isTag(reference) ? { tag: reference } : undefined;
}

/** A hash of the digest's algorithm, to verify content against it. */
export function hasherFor(digest: string): Hash {
  return createHash(parseDigest(digest).algorithm);
}

/** The digest of `bytes` with `algorithm`. */
export function digestOf(bytes: Buffer, algorithm: DigestAlgorithm = 'sha256'): string {
  return `${algorithm}:${createHash(algorithm).update(bytes).digest('hex')}`;
}
