import { Bridge, urlBuilderFor } from '../../lib/emit/bridge';
import { decodeEnvelope, encodeEnvelope, type Event, type RequestRecord } from '../../lib';
import { sha256Digest } from '../../lib/model/manifest';
import { loadFixtures } from '../helpers/fixtures';
import { RecordingSink } from '../helpers/sinks';

const fixtures = Object.fromEntries(loadFixtures().map((f) => [f.name, decodeEnvelope(f.body).events[0]]));

/** A bridge stamped with a fixture's request, actor and source records. */
function bridgeLike(fixture: Event, includeReferences = false) {
  const sink = new RecordingSink();
  const bridge = new Bridge({
    sink,
    urls: urlBuilderFor('http://127.0.0.1:5000'),
    request: fixture.request as RequestRecord,
    actor: fixture.actor,
    source: fixture.source,
    includeReferences,
  });
  return { sink, bridge };
}

/** Our event encoded with the fixture's id and timestamp, to compare bytes. */
function asFixture(ours: Event, fixture: Event): string {
  return encodeEnvelope([{ ...ours, id: fixture.id, timestamp: fixture.timestamp }]);
}

const LAYER = { size: 143, digest: 'sha256:982f41c3ecf04a68ee1fdc723194472cb2a6658590d0a1e0587a64cc8eae8504' };

describe('Bridge produces what Distribution 2.8.2 sent', () => {
  it('blob push', async () => {
    const { sink, bridge } = bridgeLike(fixtures['blob-push']);
    await bridge.blobPushed('demo/app', { mediaType: 'application/octet-stream', ...LAYER });
    expect(asFixture(sink.events[0], fixtures['blob-push'])).toBe(encodeEnvelope([fixtures['blob-push']]));
  });

  it('blob pull (a HEAD), defaulting the media type to application/octet-stream', async () => {
    const { sink, bridge } = bridgeLike(fixtures['blob-pull-head']);
    await bridge.blobPulled('demo/app', LAYER);
    expect(asFixture(sink.events[0], fixtures['blob-pull-head'])).toBe(encodeEnvelope([fixtures['blob-pull-head']]));
  });

  it('blob mount, with fromRepository', async () => {
    const { sink, bridge } = bridgeLike(fixtures['blob-mount']);
    await bridge.blobMounted('other/app', LAYER, 'demo/app');
    expect(asFixture(sink.events[0], fixtures['blob-mount'])).toBe(encodeEnvelope([fixtures['blob-mount']]));
  });

  it('manifest delete: repository and digest only', async () => {
    const f = fixtures['manifest-delete'];
    const { sink, bridge } = bridgeLike(f);
    await bridge.manifestDeleted('demo/app', f.target.digest!);
    expect(asFixture(sink.events[0], f)).toBe(encodeEnvelope([f]));
  });

  it('tag delete: repository and tag only', async () => {
    const f = fixtures['tag-delete'];
    const { sink, bridge } = bridgeLike(f);
    await bridge.tagDeleted('demo/app', 'v2');
    expect(asFixture(sink.events[0], f)).toBe(encodeEnvelope([f]));
  });

  describe('manifest events', () => {
    const f = fixtures['manifest-push-with-references'];
    // A manifest with the same config and layer as the captured one (our bytes differ, so the digest does).
    const payload = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        config: f.target.references![0],
        layers: [f.target.references![1]],
      }),
    );
    const manifest = { mediaType: 'application/vnd.oci.image.manifest.v1+json', payload };
    const digest = sha256Digest(payload);
    const expected = {
      ...f.target,
      size: payload.length,
      length: payload.length,
      digest,
      url: `http://127.0.0.1:5000/v2/demo/app/manifests/${digest}`,
    };

    it('push by tag, with references when includereferences is on', async () => {
      const { sink, bridge } = bridgeLike(f, true);
      await bridge.manifestPushed('demo/app', manifest, { tag: 'v1' });
      expect(sink.events[0].target).toEqual(expected);
      expect(Object.keys(JSON.parse(encodeEnvelope(sink.events)).events[0].target)).toEqual(Object.keys(f.target));
      expect(sink.events[0].action).toBe('push');
    });

    it('pull by tag, and no references when includereferences is off', async () => {
      const { sink, bridge } = bridgeLike(fixtures['manifest-pull-by-tag']);
      await bridge.manifestPulled('demo/app', manifest, { tag: 'v1' });
      const { references: _r, ...rest } = expected;
      expect(sink.events[0].target).toEqual(rest);
      expect(sink.events[0].action).toBe('pull');
    });

    it('pull by digest has no tag; the URL is always the digest URL', async () => {
      const { sink, bridge } = bridgeLike(f);
      await bridge.manifestPulled('demo/app', manifest);
      expect(sink.events[0].target.tag).toBeUndefined();
      expect(sink.events[0].target.url).toBe(`http://127.0.0.1:5000/v2/demo/app/manifests/${digest}`);
    });

    it('lists the manifests of an index as references', async () => {
      const { sink, bridge } = bridgeLike(f, true);
      const child = { mediaType: 'application/vnd.oci.image.manifest.v1+json', size: 345, digest, platform: { architecture: 'amd64', os: 'linux' } };
      const index = { mediaType: 'application/vnd.oci.image.index.v1+json', payload: Buffer.from(JSON.stringify({ schemaVersion: 2, manifests: [child] })) };
      await bridge.manifestPushed('demo/app', index, { tag: 'multi' });
      expect(sink.events[0].target.references).toEqual([child]);
    });

    it('refuses a manifest that does not parse, without writing', async () => {
      const { sink, bridge } = bridgeLike(f, true);
      await expect(bridge.manifestPushed('demo/app', { ...manifest, payload: Buffer.from('{nope') })).rejects.toThrow(/manifest is not valid JSON/);
      expect(sink.events).toHaveLength(0);
    });
  });

  it('repository delete: repository only', async () => {
    const { sink, bridge } = bridgeLike(fixtures['tag-delete']);
    await bridge.repoDeleted('demo/app');
    expect(sink.events[0].target).toEqual({ repository: 'demo/app' });
    expect(sink.events[0].action).toBe('delete');
  });

  it('builds each URL for its own repository and digest, whatever came just before', () => {
    const urls = urlBuilderFor('https://registry.example.com/');
    const a = 'sha256:' + 'a'.repeat(64);
    const b = 'sha256:' + 'b'.repeat(64);
    const seen = [
      urls.manifestUrl('x/app', a),
      urls.manifestUrl('x/app', a),
      urls.manifestUrl('x/app', b),
      urls.manifestUrl('y/app', b),
      urls.blobUrl('y/app', b),
      urls.manifestUrl('y/app', b),
      urls.manifestUrl('x/app', a),
    ];
    expect(seen).toEqual([
      `https://registry.example.com/v2/x/app/manifests/${a}`,
      `https://registry.example.com/v2/x/app/manifests/${a}`,
      `https://registry.example.com/v2/x/app/manifests/${b}`,
      `https://registry.example.com/v2/y/app/manifests/${b}`,
      `https://registry.example.com/v2/y/app/blobs/${b}`,
      `https://registry.example.com/v2/y/app/manifests/${b}`,
      `https://registry.example.com/v2/x/app/manifests/${a}`,
    ]);
  });

  it('gives each event its own id', async () => {
    const { sink, bridge } = bridgeLike(fixtures['tag-delete']);
    await bridge.tagDeleted('r', 'a');
    await bridge.tagDeleted('r', 'b');
    expect(sink.events[0].id).not.toBe(sink.events[1].id);
    expect(sink.events[0].request.id).toBe(sink.events[1].request.id);
  });
});
