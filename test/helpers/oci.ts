import type request from 'supertest';
import type { Content, TinyImage } from '../../demo-registry/sample-image';

// The image builders live with the demo (which writes a sample image for `npm start`);
// the push helpers below drive a registry through supertest.
export { OCI_MANIFEST, OCI_INDEX, OCI_CONFIG, OCI_LAYER, DOCKER_MANIFEST, DOCKER_LIST, DOCKER_CONFIG, DOCKER_LAYER, sha256, content, tar, tinyImage, tinyIndex, writeOciLayout } from '../../demo-registry/sample-image';
export type { Content, TinyImage, TinyImageOptions } from '../../demo-registry/sample-image';

type Client = ReturnType<typeof request>;

/** Basic credentials for a supertest request, when given. */
export function withAuth<T extends request.Test>(req: T, auth?: [string, string]): T {
  return auth ? (req.auth(auth[0], auth[1]) as T) : req;
}

/** Uploads a blob with a monolithic `POST ?digest=`; resolves to the response. */
export async function pushBlob(client: Client, name: string, blob: Content, auth?: [string, string]): Promise<request.Response> {
  return withAuth(client.post(`/v2/${name}/blobs/uploads/?digest=${blob.digest}`), auth)
    .set('Content-Type', 'application/octet-stream')
    .send(blob.bytes);
}

/** Pushes a manifest by tag or digest. */
export async function pushManifest(client: Client, name: string, reference: string, manifest: Content, auth?: [string, string]): Promise<request.Response> {
  return withAuth(client.put(`/v2/${name}/manifests/${reference}`), auth)
    .set('Content-Type', manifest.mediaType)
    // A string: superagent would JSON-encode a Buffer under a +json content type.
    .send(manifest.bytes.toString('utf8'));
}

/** Pushes an image's blobs, then its manifest as `tag`; throws unless every step succeeds. */
export async function pushImage(client: Client, name: string, tag: string, image: TinyImage, auth?: [string, string]): Promise<void> {
  for (const blob of image.blobs) {
    const res = await pushBlob(client, name, blob, auth);
    if (res.status !== 201) throw new Error(`blob push ${blob.digest} to ${name}: ${res.status} ${res.text}`);
  }
  const res = await pushManifest(client, name, tag, image.manifest, auth);
  if (res.status !== 201) throw new Error(`manifest push ${name}:${tag}: ${res.status} ${res.text}`);
}
