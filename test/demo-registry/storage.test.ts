import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { FilesystemStorage, writeFileAtomic } from '../../demo-registry/storage';
import { content, tinyImage } from '../helpers/oci';

let dir: string;
let storage: FilesystemStorage;
beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'demo-registry-storage-'));
  storage = new FilesystemStorage(path.join(dir, 'root'));
  await storage.init();
});
afterEach(() => rm(dir, { recursive: true, force: true }));

async function upload(repo: ReturnType<FilesystemStorage['repository']>, bytes: Buffer): Promise<string> {
  const id = await repo.uploads.start();
  await repo.uploads.append(id, Readable.from([bytes]));
  return id;
}

async function walk(d: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(d, { withFileTypes: true })) {
    const p = path.join(d, e.name);
    if (e.isDirectory()) out.push(...(await walk(p)));
    else out.push(path.relative(storage.root, p));
  }
  return out.sort();
}

describe('FilesystemStorage', () => {
  it('lays content out by digest and links it per repository, leaving no temp files', async () => {
    const img = tinyImage();
    const repo = storage.repository('lib/app');
    for (const b of img.blobs) await repo.blobs.commit(await upload(repo, b.bytes), b.digest);
    await repo.manifests.put({ mediaType: img.manifest.mediaType, payload: img.manifest.bytes }, { tag: 'v1' });
    const hex = (d: string) => d.slice(7);
    const files = await walk(storage.root);
    expect(files).toEqual(
      [
        ...[...img.blobs, img.manifest].map((c) => `blobs/sha256/${hex(c.digest).slice(0, 2)}/${hex(c.digest)}/data`),
        ...img.blobs.map((c) => `repositories/lib/app/_layers/sha256/${hex(c.digest)}/link`),
        `repositories/lib/app/_manifests/revisions/sha256/${hex(img.manifest.digest)}/link`,
        `repositories/lib/app/_manifests/revisions/sha256/${hex(img.manifest.digest)}/mediatype`,
        'repositories/lib/app/_manifests/tags/v1/current/link',
      ].sort(),
    );
    expect(await readFile(path.join(storage.root, 'repositories/lib/app/_manifests/tags/v1/current/link'), 'utf8')).toBe(img.manifest.digest);
  });

  it('keeps shared content when one repository deletes its link', async () => {
    const blob = content('application/octet-stream', Buffer.from('shared'));
    const a = storage.repository('a');
    await a.blobs.commit(await upload(a, blob.bytes), blob.digest);
    const b = storage.repository('b');
    await b.blobs.mount(blob.digest, 'a');
    await a.blobs.delete(blob.digest);
    await expect(a.blobs.stat(blob.digest)).rejects.toMatchObject({ code: 'BLOB_UNKNOWN' });
    expect((await b.blobs.stat(blob.digest)).size).toBe(blob.size);
    const chunks: Buffer[] = [];
    for await (const c of (await b.blobs.open(blob.digest)).read({ start: 1, end: 3 })) chunks.push(c as Buffer);
    expect(Buffer.concat(chunks).toString()).toBe('har');
  });

  it('lists repositories in the catalog and removes a repository', async () => {
    const blob = content('application/octet-stream', Buffer.from('x'));
    for (const name of ['b/two', 'a', 'b/one/deeper']) {
      const repo = storage.repository(name);
      await repo.blobs.commit(await upload(repo, blob.bytes), blob.digest);
    }
    await storage.repository('only/uploads').uploads.start();
    expect(await storage.catalog()).toEqual(['a', 'b/one/deeper', 'b/two']);
    await storage.repository('b/two').remove();
    expect(await storage.catalog()).toEqual(['a', 'b/one/deeper']);
    await expect(storage.repository('b/two').remove()).rejects.toMatchObject({ code: 'NAME_UNKNOWN' });
  });

  it('finds the tags of a digest and unlinks them one by one', async () => {
    const img = tinyImage();
    const repo = storage.repository('r');
    for (const b of img.blobs) await repo.blobs.commit(await upload(repo, b.bytes), b.digest);
    for (const tag of ['b', 'a']) await repo.manifests.put({ mediaType: img.manifest.mediaType, payload: img.manifest.bytes }, { tag });
    expect(await repo.tags.lookup(img.manifest.digest)).toEqual(['a', 'b']);
    await repo.tags.untag('a');
    expect(await repo.tags.list()).toEqual(['b']);
    await expect(repo.tags.untag('a')).rejects.toMatchObject({ code: 'MANIFEST_UNKNOWN' });
  });
});

describe('writeFileAtomic', () => {
  it('replaces a file whole and leaves no temp file', async () => {
    const file = path.join(dir, 'deep', 'er', 'f');
    await writeFileAtomic(file, 'one');
    await writeFileAtomic(file, 'two');
    expect(await readFile(file, 'utf8')).toBe('two');
    expect(await readdir(path.dirname(file))).toEqual(['f']);
    expect(existsSync(`${file}.tmp`)).toBe(false);
  });
});
