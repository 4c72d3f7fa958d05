import { Bridge, urlBuilderFor } from '../../lib/emit/bridge';
import { listenRepository } from '../../lib/emit/listener';
import { sha256Digest } from '../../lib/model/manifest';
import type { Sink } from '../../lib/deliver/sink';
import { MemoryRepository } from '../helpers/memory-repository';
import { FlakySink, RecordingSink } from '../helpers/sinks';

function setup(sink: Sink = new RecordingSink()) {
  const repos = new Map<string, MemoryRepository>();
  const raw = new MemoryRepository('demo/app', repos);
  const other = new MemoryRepository('other/app', repos);
  const bridge = new Bridge({
    sink,
    urls: urlBuilderFor('http://registry.test'),
    request: { id: 'r1', method: 'PUT', useragent: 'test' },
    actor: {},
    source: {},
  });
  const errors: string[] = [];
  const repo = listenRepository(raw, bridge, (err, op) => errors.push(`${op}: ${err.message}`));
  return { raw, other, repo, otherRepo: listenRepository(other, bridge), errors };
}

const manifest = {
  mediaType: 'application/vnd.oci.image.manifest.v1+json',
  payload: Buffer.from(JSON.stringify({ schemaVersion: 2, config: { mediaType: 'x', size: 1, digest: 'sha256:' + 'a'.repeat(64) }, layers: [] })),
};

describe('listenRepository', () => {
  it('emits one event per successful operation, as Distribution\'s listener counts them', async () => {
    const sink = new RecordingSink();
    const { raw, repo, otherRepo } = setup(sink);
    const layer = Buffer.from('layer');
    const layerDigest = sha256Digest(layer);

    raw.blobs.upload('u1', layer);
    await repo.blobs.commit('u1', layerDigest);
    const digest = await repo.manifests.put(manifest, { tag: 'v1' });
    await repo.manifests.get({ tag: 'v1' });
    await repo.manifests.get({ digest });
    await repo.blobs.open(layerDigest);
    await otherRepo.blobs.mount(layerDigest, 'demo/app');
    await repo.tags.untag('v1');
    await repo.manifests.delete(digest);
    await repo.blobs.delete(layerDigest);
    await repo.remove!();

    expect(sink.events.map((e) => `${e.action} ${e.target.repository} ${e.target.tag ?? ''}${e.target.fromRepository ?? ''}`.trim())).toEqual([
      'push demo/app',
      'push demo/app v1',
      'pull demo/app v1',
      'pull demo/app',
      'pull demo/app',
      'mount other/app demo/app',
      'delete demo/app v1',
      'delete demo/app',
      'delete demo/app',
      'delete demo/app',
    ]);
    expect(raw.removed).toBe(true);
  });

  it('emits nothing for an operation that fails, and passes its error through', async () => {
    const sink = new RecordingSink();
    const { repo } = setup(sink);
    await expect(repo.manifests.get({ tag: 'missing' })).rejects.toThrow('manifest unknown: missing');
    await expect(repo.blobs.commit('nope', 'sha256:' + '0'.repeat(64))).rejects.toThrow('upload unknown');
    await expect(repo.blobs.mount('sha256:' + '0'.repeat(64), 'other/app')).rejects.toThrow('blob unknown in other/app');
    await expect(repo.tags.untag('nope')).rejects.toThrow('tag unknown');
    expect(sink.events).toHaveLength(0);
  });

  it('never fails the operation when the notification fails; the error is reported', async () => {
    const { repo, errors } = setup(new FlakySink(() => true));
    await expect(repo.manifests.put(manifest, { tag: 'v1' })).resolves.toBe(sha256Digest(manifest.payload));
    expect(errors).toEqual(['manifest push: flaky sink: attempt 1 failed']);
  });

  it('leaves methods it does not watch untouched', async () => {
    const { raw, repo } = setup();
    await repo.manifests.put(manifest, { tag: 'v1' });
    expect(repo.tags.lookup(sha256Digest(manifest.payload))).toEqual(['v1']);
    expect(repo.name).toBe('demo/app');
    expect(repo.blobs.upload).toBeInstanceOf(Function);
    expect(raw.tagMap.get('v1')).toBe(sha256Digest(manifest.payload));
  });
});
