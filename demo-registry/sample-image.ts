// Small, real OCI and Docker images built in memory (gzip'd tar layers, configs whose
// diff_ids match, manifests), and an OCI layout directory skopeo can copy from. The demo
// writes one for `npm start`; the tests build theirs with the same code.
import { createHash } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { gzipSync } from 'node:zlib';

export const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
export const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
export const OCI_CONFIG = 'application/vnd.oci.image.config.v1+json';
export const OCI_LAYER = 'application/vnd.oci.image.layer.v1.tar+gzip';
export const DOCKER_MANIFEST = 'application/vnd.docker.distribution.manifest.v2+json';
export const DOCKER_LIST = 'application/vnd.docker.distribution.manifest.list.v2+json';
export const DOCKER_CONFIG = 'application/vnd.docker.container.image.v1+json';
export const DOCKER_LAYER = 'application/vnd.docker.image.rootfs.diff.tar.gzip';

export function sha256(bytes: Buffer): string {
  return 'sha256:' + createHash('sha256').update(bytes).digest('hex');
}

/** Content and its descriptor fields. */
export interface Content {
  mediaType: string;
  bytes: Buffer;
  digest: string;
  size: number;
}

export function content(mediaType: string, bytes: Buffer): Content {
  return { mediaType, bytes, digest: sha256(bytes), size: bytes.length };
}

function descriptor(c: Content): { mediaType: string; digest: string; size: number } {
  return { mediaType: c.mediaType, digest: c.digest, size: c.size };
}

/** A ustar archive of regular files (fixed mtime and owner, so the bytes are reproducible). */
export function tar(files: Record<string, string | Buffer>): Buffer {
  const parts: Buffer[] = [];
  for (const [name, data] of Object.entries(files)) {
    const body = Buffer.isBuffer(data) ? data : Buffer.from(data);
    const header = Buffer.alloc(512);
    const field = (value: string, offset: number, length: number) => header.write(value, offset, length, 'ascii');
    const octal = (n: number, length: number) => n.toString(8).padStart(length - 1, '0') + '\0';
    field(name, 0, 100);
    field(octal(0o644, 8), 100, 8);
    field(octal(0, 8), 108, 8);
    field(octal(0, 8), 116, 8);
    field(octal(body.length, 12), 124, 12);
    field(octal(0, 12), 136, 12);
    field('        ', 148, 8); // the checksum is computed with its own field as spaces
    field('0', 156, 1);
    field('ustar\0', 257, 6);
    field('00', 263, 2);
    let sum = 0;
    for (const b of header) sum += b;
    field(sum.toString(8).padStart(6, '0') + '\0 ', 148, 8);
    parts.push(header, body, Buffer.alloc((512 - (body.length % 512)) % 512));
  }
  parts.push(Buffer.alloc(1024));
  return Buffer.concat(parts);
}

/** A tiny image: its layers, config and manifest. */
export interface TinyImage {
  layers: Content[];
  config: Content;
  manifest: Content;
  /** Config and layers: the blobs a registry must hold before the manifest. */
  blobs: Content[];
}

export interface TinyImageOptions {
  /** One layer per entry, each a map of file name to content. @default [{ 'hello.txt': 'hello\n' }] */
  layers?: Array<Record<string, string>>;
  /** @default 'oci' */
  format?: 'oci' | 'docker';
  /** @default 'amd64' */
  architecture?: string;
}

/** Builds a valid, tiny image (gzip'd tar layers, a config with matching diff_ids, a manifest). */
export function tinyImage(options: TinyImageOptions = {}): TinyImage {
  const docker = options.format === 'docker';
  const tars = (options.layers ?? [{ 'hello.txt': 'hello\n' }]).map((files) => tar(files));
  // mtime 0 in the gzip header too, for reproducible digests.
  const layers = tars.map((t) => content(docker ? DOCKER_LAYER : OCI_LAYER, gzipSync(t, { level: 9 })));
  const config = content(
    docker ? DOCKER_CONFIG : OCI_CONFIG,
    Buffer.from(
      JSON.stringify({
        architecture: options.architecture ?? 'amd64',
        os: 'linux',
        config: { Cmd: ['/bin/true'] },
        rootfs: { type: 'layers', diff_ids: tars.map(sha256) },
        history: tars.map(() => ({ created_by: 'registry-notifications demo' })),
      }),
    ),
  );
  const manifest = content(
    docker ? DOCKER_MANIFEST : OCI_MANIFEST,
    Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: docker ? DOCKER_MANIFEST : OCI_MANIFEST,
        config: descriptor(config),
        layers: layers.map(descriptor),
      }),
    ),
  );
  return { layers, config, manifest, blobs: [config, ...layers] };
}

/** An index (or Docker manifest list) of images, one platform each. */
export function tinyIndex(images: TinyImage[], format: 'oci' | 'docker' = 'oci'): Content {
  const mediaType = format === 'docker' ? DOCKER_LIST : OCI_INDEX;
  return content(
    mediaType,
    Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType,
        manifests: images.map((img) => ({
          ...descriptor(img.manifest),
          platform: { architecture: (JSON.parse(img.config.bytes.toString()) as { architecture: string }).architecture, os: 'linux' },
        })),
      }),
    ),
  );
}

/**
 * Writes an OCI image layout directory (`oci:DIR:TAG` for skopeo) holding the images,
 * each named by its tag in index.json.
 */
export async function writeOciLayout(dir: string, images: Array<{ tag: string; image: TinyImage }>): Promise<void> {
  await mkdir(path.join(dir, 'blobs', 'sha256'), { recursive: true });
  await writeFile(path.join(dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  for (const { image } of images) {
    for (const c of [...image.blobs, image.manifest]) {
      await writeFile(path.join(dir, 'blobs', 'sha256', c.digest.slice('sha256:'.length)), c.bytes);
    }
  }
  const index = {
    schemaVersion: 2,
    manifests: images.map(({ tag, image }) => ({
      ...descriptor(image.manifest),
      annotations: { 'org.opencontainers.image.ref.name': tag },
    })),
  };
  await writeFile(path.join(dir, 'index.json'), JSON.stringify(index));
}

/** What was pushed: where the manifest lives and how to ask for it. */
export interface PushedImage {
  repository: string;
  tag: string;
  /** Digest of the manifest bytes. */
  digest: string;
  /** `<base>/v2/<repository>/manifests/<tag>` */
  manifestUrl: string;
  /** The `Accept` header a pull must send to be given this manifest. */
  accept: string;
}

/** A registry answered a push step with an unexpected status. */
export class PushError extends Error {
  override readonly name = 'PushError';
  constructor(step: string, url: string, status: number, expected: readonly number[], body: string) {
    super(`${step} failed: ${url} answered ${status}, expected ${expected.join(' or ')}: ${body.slice(0, 300)}`);
  }
}

async function expectStatus(step: string, url: string, res: Response, allowed: number[]): Promise<void> {
  if (!allowed.includes(res.status)) throw new PushError(step, url, res.status, allowed, await res.text());
  await res.arrayBuffer();
}

async function pushBlobOverHttp(base: string, repository: string, blob: Content): Promise<void> {
  const start = `${base}/v2/${repository}/blobs/uploads/`;
  const res = await fetch(start, { method: 'POST' });
  const location = res.headers.get('location');
  await expectStatus('blob upload start', start, res, [202]);
  if (!location) throw new PushError('blob upload start', start, res.status, [202], 'the answer had no Location header');
  // Location may be relative and may already carry a query (Distribution's _state).
  const put = new URL(location, base);
  put.searchParams.set('digest', blob.digest);
  const done = await fetch(put, { method: 'PUT', headers: { 'Content-Type': 'application/octet-stream' }, body: blob.bytes });
  await expectStatus('blob upload', put.toString(), done, [201]);
}

/**
 * Pushes an image to a running registry over HTTP as a client does (each blob: POST an
 * upload, PUT it with its digest; then the manifest by tag), so any Distribution
 * registry takes it. One push event per blob and one for the manifest.
 */
export async function pushImageOverHttp(base: string, repository: string, tag: string, image: TinyImage = tinyImage()): Promise<PushedImage> {
  for (const blob of image.blobs) await pushBlobOverHttp(base, repository, blob);
  const manifestUrl = `${base}/v2/${repository}/manifests/${tag}`;
  const res = await fetch(manifestUrl, { method: 'PUT', headers: { 'Content-Type': image.manifest.mediaType }, body: image.manifest.bytes });
  await expectStatus('manifest upload', manifestUrl, res, [201]);
  return { repository, tag, digest: image.manifest.digest, manifestUrl, accept: image.manifest.mediaType };
}
