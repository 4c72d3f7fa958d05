import { Bridge, urlBuilderFor } from '../lib/pipeline';
import type { Event } from '../lib';

/** Realistic events (a layer push by skopeo), built by the bridge as a registry would. */
export function makeBenchEvents(n: number): Event[] {
  const events: Event[] = [];
  const bridge = new Bridge({
    sink: { write: async (e) => void events.push(...e), close: async () => undefined },
    urls: urlBuilderFor('http://127.0.0.1:5000'),
    request: { id: 'b5b53c17-a57a-4750-b659-14626e37d071', addr: '127.0.0.1:32926', host: '127.0.0.1:5000', method: 'PUT', useragent: 'skopeo/1.9.3' },
    actor: { name: 'alice' },
    source: { addr: 'bench:5000', instanceID: 'ab8d43d2-48f3-4a4f-a005-7d1b41e0909c' },
  });
  // The digest's hex as a registry has it from its hash, one flat string (a `padStart`
  // would make it a rope of cons cells, which no registry's digest is).
  const bytes = Buffer.alloc(32);
  for (let i = 0; i < n; i++) {
    bytes.writeUInt32BE(i, 28);
    void bridge.blobPushed('demo/app', { size: 143 + i, digest: 'sha256:' + bytes.toString('hex') });
  }
  return events;
}

/** A small OCI image manifest (a config and one layer), for pull events. */
export const TINY_MANIFEST = {
  mediaType: 'application/vnd.oci.image.manifest.v1+json',
  payload: Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', size: 292, digest: 'sha256:' + '2'.repeat(64) },
      layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', size: 143, digest: 'sha256:' + '9'.repeat(64) }],
    }),
  ),
};
