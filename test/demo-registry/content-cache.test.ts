import fsCallback from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { CACHE_ENTRY_BYTES, ContentCache, DEFAULT_CONTENT_CACHE, FilesystemStorage, type FilesystemRepository } from '../../demo-registry/storage';
import { content, tinyImage, type TinyImage } from '../helpers/oci';

let dir: string;
let storage: FilesystemStorage;
beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'demo-registry-cache-'));
  storage = new FilesystemStorage(path.join(dir, 'root'));
  await storage.init();
});
afterEach(async () => {
  jest.restoreAllMocks();
  await rm(dir, { recursive: true, force: true });
});

async function store(repo: FilesystemRepository, img: TinyImage, tag: string): Promise<void> {
  for (const b of img.blobs) {
    const id = await repo.uploads.start();
    await repo.uploads.append(id, Readable.from([b.bytes]));
    await repo.blobs.commit(id, b.digest);
  }
  await repo.manifests.put({ mediaType: img.manifest.mediaType, payload: img.manifest.bytes }, { tag });
}

/** Files opened by the callback `fs.open` or `fs.readFile` (the read path's ways of reading) while `fn` runs, relative to `root`. */
async function filesRead(fn: () => Promise<unknown>, root = storage.root): Promise<string[]> {
  const spies = [jest.spyOn(fsCallback, 'open'), jest.spyOn(fsCallback, 'readFile')];
  try {
    await fn();
    return spies.flatMap((spy) => spy.mock.calls.map((c) => path.relative(root, String(c[0]))));
  } finally {
    for (const spy of spies) spy.mockRestore();
  }
}

describe('ContentCache', () => {
  const key = (i: number) => `k${i}`;

  it('has sane defaults', () => {
    const cache = new ContentCache();
    expect([cache.maxEntries, cache.maxBytes]).toEqual([DEFAULT_CONTENT_CACHE.maxEntries, DEFAULT_CONTENT_CACHE.maxBytes]);
    expect(storage.cache.maxEntries).toBe(10_000);
    expect(storage.cache.maxBytes).toBe(32 * 1024 * 1024);
  });

  it('evicts the least recently used beyond maxEntries', () => {
    const cache = new ContentCache({ maxEntries: 2 });
    cache.set(key(1), 1, 10, cache.mark());
    cache.set(key(2), 2, 10, cache.mark());
    expect(cache.get(key(1))).toBe(1); // now 2 is the least recently used
    cache.set(key(3), 3, 10, cache.mark());
    expect([cache.has(key(1)), cache.has(key(2)), cache.has(key(3))]).toEqual([true, false, true]);
    expect([cache.size, cache.bytes]).toEqual([2, 20]);
  });

  it('evicts beyond maxBytes and never holds an entry larger than the bound', () => {
    const cache = new ContentCache({ maxBytes: 100 });
    for (let i = 0; i < 5; i++) cache.set(key(i), i, 30, cache.mark());
    expect([cache.size, cache.bytes]).toEqual([3, 90]);
    expect([cache.has(key(1)), cache.has(key(2))]).toEqual([false, true]);
    cache.set('big', 'x', 101, cache.mark());
    expect(cache.has('big')).toBe(false);
    // Replacing an entry recharges it.
    cache.set(key(4), 'again', 50, cache.mark());
    expect([cache.size, cache.bytes]).toEqual([2, 80]);
  });

  it('is off with maxEntries 0', () => {
    const cache = new ContentCache({ maxEntries: 0 });
    cache.set('a', 1, 1, cache.mark());
    expect(cache.size).toBe(0);
  });

  it('does not take a value read before an invalidation', () => {
    const cache = new ContentCache();
    const mark = cache.mark();
    cache.invalidate('other');
    cache.set('a', 1, 1, mark);
    expect(cache.has('a')).toBe(false);
    cache.set('a', 1, 1, cache.mark());
    expect(cache.get('a')).toBe(1);
    cache.invalidatePrefix('a');
    expect([cache.size, cache.bytes]).toEqual([0, 0]);
  });
});

describe('FilesystemStorage with its cache', () => {
  it('answers a cached manifest with the same bytes, reading only the links again', async () => {
    const img = tinyImage();
    const repo = storage.repository('lib/app');
    await store(repo, img, 'v1');
    const hex = img.manifest.digest.slice(7);
    const first = await filesRead(() => repo.manifests.get({ tag: 'v1' }));
    expect(first.sort()).toEqual(
      [
        'repositories/lib/app/_manifests/tags/v1/current/link',
        `blobs/sha256/${hex.slice(0, 2)}/${hex}/data`,
        `repositories/lib/app/_manifests/revisions/sha256/${hex}/mediatype`,
      ].sort(),
    );
    for (const ref of [{ tag: 'v1' }, { digest: img.manifest.digest }]) {
      let got: Awaited<ReturnType<typeof repo.manifests.get>> | undefined;
      const read = await filesRead(async () => (got = await storage.repository('lib/app').manifests.get(ref)));
      expect(read).toEqual(ref.tag ? ['repositories/lib/app/_manifests/tags/v1/current/link'] : []);
      expect(got!.mediaType).toBe(img.manifest.mediaType);
      expect(got!.digest).toBe(img.manifest.digest);
      expect(Buffer.compare(got!.payload, img.manifest.bytes)).toBe(0);
    }
  });

  it('reads from disk on a miss, with the cache off as with it on', async () => {
    const off = new FilesystemStorage(storage.root, { cache: { maxEntries: 0 } });
    const img = tinyImage();
    await store(off.repository('r'), img, 'v1');
    for (let i = 0; i < 2; i++) {
      const read = await filesRead(() => off.repository('r').manifests.get({ tag: 'v1' }));
      expect(read).toHaveLength(3);
    }
    expect(Buffer.compare((await off.repository('r').manifests.get({ tag: 'v1' })).payload, img.manifest.bytes)).toBe(0);
    expect(off.cache.size).toBe(0);
  });

  it('sees a manifest delete of this process at once, by digest and by tag', async () => {
    const img = tinyImage();
    const repo = storage.repository('r');
    await store(repo, img, 'v1');
    await repo.manifests.get({ digest: img.manifest.digest });
    await repo.manifests.delete(img.manifest.digest);
    await expect(storage.repository('r').manifests.get({ digest: img.manifest.digest })).rejects.toMatchObject({ code: 'MANIFEST_UNKNOWN' });
    // The tag is still there (the caller untags), yet names a revision that is gone.
    await expect(storage.repository('r').manifests.get({ tag: 'v1' })).rejects.toMatchObject({ code: 'MANIFEST_UNKNOWN' });
  });

  it('sees a revision removed behind its back (another process), though the content is cached', async () => {
    const img = tinyImage();
    const repo = storage.repository('r');
    await store(repo, img, 'v1');
    await repo.manifests.get({ tag: 'v1' });
    expect(storage.cache.size).toBeGreaterThan(0);
    await rm(path.join(repo.dir, '_manifests', 'revisions', 'sha256', img.manifest.digest.slice(7)), { recursive: true });
    await expect(storage.repository('r').manifests.get({ tag: 'v1' })).rejects.toMatchObject({ code: 'MANIFEST_UNKNOWN' });
  });

  it('follows a tag that moves, and an untag', async () => {
    const one = tinyImage();
    const two = tinyImage({ layers: [{ 'two.txt': 'two\n' }] });
    const repo = storage.repository('r');
    await store(repo, one, 'v1');
    await store(repo, two, 'v2');
    expect((await repo.manifests.get({ tag: 'v1' })).digest).toBe(one.manifest.digest);
    await repo.tags.tag('v1', two.manifest.digest);
    expect((await storage.repository('r').manifests.get({ tag: 'v1' })).digest).toBe(two.manifest.digest);
    await repo.tags.untag('v1');
    await expect(storage.repository('r').manifests.get({ tag: 'v1' })).rejects.toMatchObject({ code: 'MANIFEST_UNKNOWN' });
  });

  it('drops a repository\'s entries when the repository is deleted', async () => {
    const img = tinyImage();
    await store(storage.repository('a'), img, 'v1');
    await store(storage.repository('ab'), img, 'v1');
    await storage.repository('a').manifests.get({ tag: 'v1' });
    await storage.repository('ab').manifests.get({ tag: 'v1' });
    await storage.repository('a').remove();
    expect(storage.cache.has(`manifest a@${img.manifest.digest}`)).toBe(false);
    expect(storage.cache.has(`manifest ab@${img.manifest.digest}`)).toBe(true);
    await expect(storage.repository('a').manifests.get({ digest: img.manifest.digest })).rejects.toMatchObject({ code: 'MANIFEST_UNKNOWN' });
    expect((await storage.repository('ab').manifests.get({ tag: 'v1' })).digest).toBe(img.manifest.digest);
  });

  it('caches blob descriptors, still checking the repository link, and sees a blob delete at once', async () => {
    const blob = content('application/octet-stream', Buffer.from('some bytes'));
    const a = storage.repository('a');
    const id = await a.uploads.start();
    await a.uploads.append(id, Readable.from([blob.bytes]));
    await a.blobs.commit(id, blob.digest);
    expect((await a.blobs.stat(blob.digest)).size).toBe(blob.size);
    expect(storage.cache.has(`blob ${blob.digest}`)).toBe(true);
    await expect(storage.repository('b').blobs.stat(blob.digest)).rejects.toMatchObject({ code: 'BLOB_UNKNOWN' });
    await a.blobs.delete(blob.digest);
    expect(storage.cache.has(`blob ${blob.digest}`)).toBe(false);
    await expect(storage.repository('a').blobs.stat(blob.digest)).rejects.toMatchObject({ code: 'BLOB_UNKNOWN' });
  });

  it('keeps within its bounds', async () => {
    const small = new FilesystemStorage(storage.root, { cache: { maxEntries: 2 } });
    const images = [1, 2, 3].map((i) => tinyImage({ layers: [{ [`f${i}.txt`]: `${i}\n` }] }));
    for (const [i, img] of images.entries()) await store(small.repository('r'), img, `v${i}`);
    for (const img of images) await small.repository('r').manifests.get({ digest: img.manifest.digest });
    expect(small.cache.size).toBe(2);
    expect(small.cache.has(`manifest r@${images[0].manifest.digest}`)).toBe(false);

    const tight = new FilesystemStorage(storage.root, { cache: { maxBytes: images[0].manifest.size + CACHE_ENTRY_BYTES } });
    for (const img of images) await tight.repository('r').manifests.get({ digest: img.manifest.digest });
    expect(tight.cache.size).toBe(1);
    expect(tight.cache.bytes).toBeLessThanOrEqual(tight.cache.maxBytes);
    // Evicted or not, every read answers the right bytes.
    for (const img of images) expect(Buffer.compare((await tight.repository('r').manifests.get({ digest: img.manifest.digest })).payload, img.manifest.bytes)).toBe(0);
  });

  it('answers a reused manifest once, without reading, and only for the same reference', async () => {
    const img = tinyImage();
    await store(storage.repository('r'), img, 'v1');
    const repo = storage.repository('r');
    const stored = await repo.manifests.get({ tag: 'v1' });
    repo.manifests.reuseOnce({ tag: 'v1' }, stored);
    let again: unknown;
    expect(await filesRead(async () => (again = await repo.manifests.get({ tag: 'v1' })))).toEqual([]);
    expect(again).toBe(stored);
    expect(await filesRead(() => repo.manifests.get({ tag: 'v1' }))).toHaveLength(1);
    repo.manifests.reuseOnce({ tag: 'v1' }, stored);
    await expect(repo.manifests.get({ tag: 'other' })).rejects.toMatchObject({ code: 'MANIFEST_UNKNOWN' });
    expect(await filesRead(() => repo.manifests.get({ tag: 'v1' }))).toHaveLength(1);
  });

  it('serves the cached media type without reading it again, and drops it on a put of this process', async () => {
    const img = tinyImage();
    const repo = storage.repository('r');
    await store(repo, img, 'v1');
    await repo.manifests.get({ tag: 'v1' });
    const mediatype = path.join(repo.dir, '_manifests', 'revisions', 'sha256', img.manifest.digest.slice(7), 'mediatype');
    await writeFile(mediatype, 'application/x-changed');
    expect((await storage.repository('r').manifests.get({ tag: 'v1' })).mediaType).toBe(img.manifest.mediaType);
    // A put of the same digest by this process drops the entry (and rewrites the media type).
    await repo.manifests.put({ mediaType: img.manifest.mediaType, payload: img.manifest.bytes }, { tag: 'v1' });
    expect(storage.cache.has(`manifest r@${img.manifest.digest}`)).toBe(false);
    expect((await storage.repository('r').manifests.get({ tag: 'v1' })).mediaType).toBe(img.manifest.mediaType);
  });
});

describe('manifest GET through the app', () => {
  it('reads each file once per GET with notifications on, and only the tag link once cached', async () => {
    const { createNotifications } = await import('../../lib');
    const { Registry } = await import('prom-client');
    const { registryFixture } = await import('./registry-fixture');
    const { pushImage } = await import('../helpers/oci');
    const notifications = createNotifications({ endpoints: [] }, { metricsRegistry: new Registry() });
    const f = await registryFixture({ notifications });
    try {
      const img = tinyImage();
      await pushImage(f.client, 'r', 'v1', img);
      const get = () => f.client.get('/v2/r/manifests/v1').buffer(true);
      const first = await filesRead(get, f.storage.root);
      expect(first).toHaveLength(3);
      expect(new Set(first).size).toBe(3);
      expect(await filesRead(get, f.storage.root)).toEqual(['repositories/r/_manifests/tags/v1/current/link']);
      const res = await get();
      expect([res.status, res.headers['docker-content-digest']]).toEqual([200, img.manifest.digest]);
    } finally {
      await notifications.close();
      await f.cleanup();
    }
  });
});

describe('small-file reads', () => {
  it('reads a link longer than one small read whole', async () => {
    const img = tinyImage();
    const repo = storage.repository('r');
    await store(repo, img, 'v1');
    await writeFile(path.join(repo.dir, '_manifests', 'tags', 'v1', 'current', 'link'), `${img.manifest.digest}${'\n'.repeat(2000)}`);
    expect((await storage.repository('r').manifests.get({ tag: 'v1' })).digest).toBe(img.manifest.digest);
  });
});
