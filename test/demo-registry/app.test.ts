import { existsSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import {
  DOCKER_LIST,
  DOCKER_MANIFEST,
  OCI_INDEX,
  OCI_MANIFEST,
  content,
  pushBlob,
  pushImage,
  pushManifest,
  sha256,
  tinyImage,
  tinyIndex,
} from '../helpers/oci';
import { registryFixture, type RegistryFixture } from './registry-fixture';

let f: RegistryFixture;
beforeEach(async () => {
  f = await registryFixture();
});
afterEach(async () => {
  await f.cleanup();
});

const errorCode = (res: { body: { errors?: Array<{ code: string }> } }) => res.body.errors?.[0]?.code;

describe('base and routing', () => {
  it('answers GET /v2/ with {} and the API version header', async () => {
    const res = await f.client.get('/v2/');
    expect(res.status).toBe(200);
    expect(res.body).toEqual({});
    expect(res.headers['docker-distribution-api-version']).toBe('registry/2.0');
  });

  it('answers unknown paths 404 and wrong methods 405 UNSUPPORTED', async () => {
    expect((await f.client.get('/v2/a/nothing/here')).status).toBe(404);
    const res = await f.client.post('/v2/a/tags/list');
    expect(res.status).toBe(405);
    expect(errorCode(res)).toBe('UNSUPPORTED');
  });

  it('rejects invalid repository names with NAME_INVALID', async () => {
    for (const name of ['Upper/case', 'a//b', 'trailing-/x', '-lead', 'a'.repeat(256)]) {
      const res = await f.client.get(`/v2/${name}/manifests/latest`);
      expect([name, res.status, errorCode(res)]).toEqual([name, 400, 'NAME_INVALID']);
    }
  });
});

describe('blobs', () => {
  const blob = content('application/octet-stream', Buffer.from('some blob bytes'));

  it('stores a monolithic upload content-addressed, atomically, and serves it back', async () => {
    const res = await pushBlob(f.client, 'a/b/c', blob);
    expect(res.status).toBe(201);
    expect(res.headers.location).toBe(`/v2/a/b/c/blobs/${blob.digest}`);
    expect(res.headers['docker-content-digest']).toBe(blob.digest);
    const hex = blob.digest.slice(7);
    expect(existsSync(path.join(f.storage.root, 'blobs', 'sha256', hex.slice(0, 2), hex, 'data'))).toBe(true);
    // No temp files left behind by the atomic writes.
    const leftovers = await readdir(path.join(f.storage.root, 'repositories', 'a', 'b', 'c', '_layers', 'sha256', hex));
    expect(leftovers).toEqual(['link']);

    const get = await f.client.get(`/v2/a/b/c/blobs/${blob.digest}`).buffer(true).parse(binary);
    expect(get.status).toBe(200);
    expect(Buffer.compare(get.body, blob.bytes)).toBe(0);
    expect(get.headers['content-length']).toBe(String(blob.size));
    expect(get.headers['docker-content-digest']).toBe(blob.digest);

    const head = await f.client.head(`/v2/a/b/c/blobs/${blob.digest}`);
    expect(head.status).toBe(200);
    expect(head.headers['content-length']).toBe(String(blob.size));
  });

  it('serves byte ranges with 206 and refuses ranges past the end with 416', async () => {
    await pushBlob(f.client, 'r', blob);
    const part = await f.client.get(`/v2/r/blobs/${blob.digest}`).set('Range', 'bytes=5-8').buffer(true).parse(binary);
    expect(part.status).toBe(206);
    expect(part.body.toString()).toBe('blob');
    expect(part.headers['content-range']).toBe(`bytes 5-8/${blob.size}`);
    const suffix = await f.client.get(`/v2/r/blobs/${blob.digest}`).set('Range', 'bytes=-5').buffer(true).parse(binary);
    expect(suffix.body.toString()).toBe('bytes');
    const open = await f.client.get(`/v2/r/blobs/${blob.digest}`).set('Range', 'bytes=10-').buffer(true).parse(binary);
    expect(open.body.toString()).toBe('bytes');
    const bad = await f.client.get(`/v2/r/blobs/${blob.digest}`).set('Range', `bytes=${blob.size}-`);
    expect(bad.status).toBe(416);
    expect(bad.headers['content-range']).toBe(`bytes */${blob.size}`);
  });

  it('answers BLOB_UNKNOWN for a blob not in the repository, even if another has it', async () => {
    await pushBlob(f.client, 'one', blob);
    const res = await f.client.get(`/v2/two/blobs/${blob.digest}`);
    expect(res.status).toBe(404);
    expect(errorCode(res)).toBe('BLOB_UNKNOWN');
    expect((await f.client.head(`/v2/two/blobs/${blob.digest}`)).status).toBe(404);
  });

  it('rejects malformed digests with DIGEST_INVALID', async () => {
    for (const d of ['sha256:abc', 'md5:' + 'a'.repeat(32), 'sha256:' + 'A'.repeat(64), 'sha512:' + 'a'.repeat(64), 'nocolon']) {
      const res = await f.client.get(`/v2/r/blobs/${d}`);
      // Without a colon it is no digest at all, so the path names no route.
      if (d === 'nocolon') continue;
      expect([d, res.status, errorCode(res)]).toEqual([d, 400, 'DIGEST_INVALID']);
    }
  });

  it('rejects a monolithic upload whose content does not match its digest, and keeps nothing', async () => {
    const wrong = sha256(Buffer.from('other'));
    const res = await f.client.post(`/v2/r/blobs/uploads/?digest=${wrong}`).send(blob.bytes);
    expect(res.status).toBe(400);
    expect(errorCode(res)).toBe('DIGEST_INVALID');
    expect((await f.client.head(`/v2/r/blobs/${wrong}`)).status).toBe(404);
    expect(await readdir(path.join(f.storage.root, 'repositories', 'r', '_uploads'))).toEqual([]);
  });

  it('accepts sha512 digests', async () => {
    const { createHash } = await import('node:crypto');
    const digest = 'sha512:' + createHash('sha512').update(blob.bytes).digest('hex');
    const res = await f.client.post(`/v2/r/blobs/uploads/?digest=${digest}`).send(blob.bytes);
    expect(res.status).toBe(201);
    expect((await f.client.head(`/v2/r/blobs/${digest}`)).headers['content-length']).toBe(String(blob.size));
  });

  it('deletes a blob link (202) and then answers BLOB_UNKNOWN', async () => {
    await pushBlob(f.client, 'r', blob);
    expect((await f.client.delete(`/v2/r/blobs/${blob.digest}`)).status).toBe(202);
    expect(errorCode(await f.client.get(`/v2/r/blobs/${blob.digest}`))).toBe('BLOB_UNKNOWN');
    expect(errorCode(await f.client.delete(`/v2/r/blobs/${blob.digest}`))).toBe('BLOB_UNKNOWN');
  });

  it('refuses deletes with 405 UNSUPPORTED when storage.delete.enabled is false', async () => {
    const g = await registryFixture({ deleteEnabled: false });
    try {
      const img = tinyImage();
      await pushImage(g.client, 'r', 'v1', img);
      for (const p of [`/v2/r/blobs/${img.config.digest}`, `/v2/r/manifests/${img.manifest.digest}`, '/v2/r/manifests/v1']) {
        const res = await g.client.delete(p);
        expect([p, res.status, errorCode(res)]).toEqual([p, 405, 'UNSUPPORTED']);
      }
      expect((await g.client.get('/v2/r/manifests/v1')).status).toBe(200);
    } finally {
      await g.cleanup();
    }
  });
});

describe('uploads', () => {
  const bytes = Buffer.from('0123456789abcdef');
  const digest = sha256(bytes);

  it('starts a session with 202, Location, Docker-Upload-UUID and Range 0-0', async () => {
    const res = await f.client.post('/v2/x/y/blobs/uploads/');
    expect(res.status).toBe(202);
    const id = res.headers['docker-upload-uuid'];
    expect(id).toMatch(/^[0-9a-f-]{36}$/);
    expect(res.headers.location).toBe(`/v2/x/y/blobs/uploads/${id}`);
    expect(res.headers.range).toBe('0-0');
  });

  it('takes chunks in order, reports status, and completes with the digest', async () => {
    const loc = (await f.client.post('/v2/r/blobs/uploads/')).headers.location;
    const p1 = await f.client.patch(loc).set('Content-Range', '0-7').set('Content-Type', 'application/octet-stream').send(bytes.subarray(0, 8));
    expect(p1.status).toBe(202);
    expect(p1.headers.range).toBe('0-7');
    const status = await f.client.get(loc);
    expect(status.status).toBe(204);
    expect(status.headers.range).toBe('0-7');
    // A chunk that does not start where the upload ends is refused.
    const gap = await f.client.patch(loc).set('Content-Range', '9-15').set('Content-Type', 'application/octet-stream').send(bytes.subarray(9));
    expect(gap.status).toBe(416);
    expect(errorCode(gap)).toBe('BLOB_UPLOAD_INVALID');
    expect(gap.headers.range).toBe('0-7');
    const p2 = await f.client.patch(loc).set('Content-Range', '8-15').set('Content-Type', 'application/octet-stream').send(bytes.subarray(8));
    expect(p2.headers.range).toBe('0-15');
    const done = await f.client.put(`${loc}?digest=${digest}`);
    expect(done.status).toBe(201);
    expect(done.headers['docker-content-digest']).toBe(digest);
    expect(done.headers.location).toBe(`/v2/r/blobs/${digest}`);
    const get = await f.client.get(`/v2/r/blobs/${digest}`).buffer(true).parse(binary);
    expect(get.body.toString()).toBe(bytes.toString());
    // The session is gone once completed.
    expect(errorCode(await f.client.get(loc))).toBe('BLOB_UPLOAD_UNKNOWN');
  });

  it('takes the last chunk with the PUT', async () => {
    const loc = (await f.client.post('/v2/r/blobs/uploads/')).headers.location;
    await f.client.patch(loc).set('Content-Type', 'application/octet-stream').send(bytes.subarray(0, 4));
    const done = await f.client.put(`${loc}?digest=${digest}`).set('Content-Type', 'application/octet-stream').send(bytes.subarray(4));
    expect(done.status).toBe(201);
  });

  it('refuses malformed or mismatched Content-Range with 416', async () => {
    const loc = (await f.client.post('/v2/r/blobs/uploads/')).headers.location;
    for (const range of ['abc', '0-99', '5-2']) {
      const res = await f.client.patch(loc).set('Content-Range', range).set('Content-Type', 'application/octet-stream').send(bytes);
      expect([range, res.status, errorCode(res)]).toEqual([range, 416, 'BLOB_UPLOAD_INVALID']);
    }
  });

  it('answers DIGEST_INVALID when completing with a wrong or missing digest, and ends the session on a mismatch', async () => {
    const loc = (await f.client.post('/v2/r/blobs/uploads/')).headers.location;
    await f.client.patch(loc).set('Content-Type', 'application/octet-stream').send(bytes);
    const missing = await f.client.put(loc);
    expect([missing.status, errorCode(missing)]).toEqual([400, 'DIGEST_INVALID']);
    const malformed = await f.client.put(`${loc}?digest=sha256:1234`);
    expect([malformed.status, errorCode(malformed)]).toEqual([400, 'DIGEST_INVALID']);
    const wrong = await f.client.put(`${loc}?digest=${sha256(Buffer.from('x'))}`);
    expect([wrong.status, errorCode(wrong)]).toEqual([400, 'DIGEST_INVALID']);
    expect(errorCode(await f.client.get(loc))).toBe('BLOB_UPLOAD_UNKNOWN');
  });

  it('answers BLOB_UPLOAD_UNKNOWN for sessions that do not exist', async () => {
    const unknown = '/v2/r/blobs/uploads/3f0c9a1e-1111-4222-8333-444455556666';
    for (const req of [f.client.get(unknown), f.client.patch(unknown).send('x'), f.client.put(`${unknown}?digest=${digest}`), f.client.delete(unknown)]) {
      const res = await req;
      expect([res.status, errorCode(res)]).toEqual([404, 'BLOB_UPLOAD_UNKNOWN']);
    }
    const res = await f.client.get('/v2/r/blobs/uploads/..%2F..%2Fetc');
    expect(errorCode(res)).toBe('BLOB_UPLOAD_UNKNOWN');
  });

  it('cancels a session with DELETE (204), after which it is unknown', async () => {
    const loc = (await f.client.post('/v2/r/blobs/uploads/')).headers.location;
    expect((await f.client.delete(loc)).status).toBe(204);
    expect((await f.client.get(loc)).status).toBe(404);
  });

  it('mounts a blob from another repository (201), and falls back to a session (202) when it is not there', async () => {
    const blob = content('application/octet-stream', bytes);
    await pushBlob(f.client, 'src/repo', blob);
    const mount = await f.client.post(`/v2/dst/blobs/uploads/?mount=${blob.digest}&from=src/repo`);
    expect(mount.status).toBe(201);
    expect(mount.headers.location).toBe(`/v2/dst/blobs/${blob.digest}`);
    expect((await f.client.head(`/v2/dst/blobs/${blob.digest}`)).status).toBe(200);

    const missing = sha256(Buffer.from('missing'));
    const fallback = await f.client.post(`/v2/dst/blobs/uploads/?mount=${missing}&from=src/repo`);
    expect(fallback.status).toBe(202);
    expect(fallback.headers['docker-upload-uuid']).toBeTruthy();
    expect(errorCode(await f.client.post(`/v2/dst/blobs/uploads/?mount=${blob.digest}&from=Bad`))).toBe('NAME_INVALID');
  });
});

describe('manifests', () => {
  it('pushes by tag and pulls by tag and digest with Content-Type, digest and length', async () => {
    const img = tinyImage();
    await pushImage(f.client, 'lib/app', 'v1', img);
    for (const ref of ['v1', img.manifest.digest]) {
      const res = await f.client.get(`/v2/lib/app/manifests/${ref}`).set('Accept', OCI_MANIFEST).buffer(true).parse(binary);
      expect(res.status).toBe(200);
      expect(res.headers['content-type']).toBe(OCI_MANIFEST);
      expect(res.headers['docker-content-digest']).toBe(img.manifest.digest);
      expect(res.headers['content-length']).toBe(String(img.manifest.size));
      expect(Buffer.compare(res.body, img.manifest.bytes)).toBe(0);
    }
    const head = await f.client.head('/v2/lib/app/manifests/v1');
    expect(head.status).toBe(200);
    expect(head.headers['docker-content-digest']).toBe(img.manifest.digest);
    expect(head.headers['content-length']).toBe(String(img.manifest.size));
  });

  it('answers PUT with 201, Location and Docker-Content-Digest', async () => {
    const img = tinyImage({ format: 'docker' });
    for (const b of img.blobs) await pushBlob(f.client, 'r', b);
    const res = await pushManifest(f.client, 'r', 'latest', img.manifest);
    expect(res.status).toBe(201);
    expect(res.headers.location).toBe(`/v2/r/manifests/${img.manifest.digest}`);
    expect(res.headers['docker-content-digest']).toBe(img.manifest.digest);
    const get = await f.client.get('/v2/r/manifests/latest').set('Accept', DOCKER_MANIFEST);
    expect(get.headers['content-type']).toBe(DOCKER_MANIFEST);
  });

  it('pushes by digest, and refuses a digest that does not match with DIGEST_INVALID', async () => {
    const img = tinyImage();
    for (const b of img.blobs) await pushBlob(f.client, 'r', b);
    expect((await pushManifest(f.client, 'r', img.manifest.digest, img.manifest)).status).toBe(201);
    const wrong = await pushManifest(f.client, 'r', sha256(Buffer.from('no')), img.manifest);
    expect([wrong.status, errorCode(wrong)]).toEqual([400, 'DIGEST_INVALID']);
    // Pushed by digest, nothing is tagged.
    expect((await f.client.get('/v2/r/tags/list')).body.tags).toEqual([]);
  });

  it('refuses image manifests whose blobs are missing with MANIFEST_BLOB_UNKNOWN', async () => {
    const img = tinyImage();
    await pushBlob(f.client, 'r', img.config);
    const res = await pushManifest(f.client, 'r', 'v1', img.manifest);
    expect([res.status, errorCode(res)]).toEqual([400, 'MANIFEST_BLOB_UNKNOWN']);
    expect(res.body.errors[0].detail).toEqual({ digest: img.layers[0].digest });
    expect(errorCode(await f.client.get('/v2/r/manifests/v1'))).toBe('MANIFEST_UNKNOWN');
  });

  it('stores indexes and manifest lists whose children are present, and refuses them otherwise', async () => {
    const amd = tinyImage({ architecture: 'amd64' });
    const arm = tinyImage({ architecture: 'arm64', layers: [{ 'arm.txt': 'arm\n' }] });
    const index = tinyIndex([amd, arm]);
    await pushImage(f.client, 'r', 'amd', amd);
    const early = await pushManifest(f.client, 'r', 'multi', index);
    expect([early.status, errorCode(early)]).toEqual([400, 'MANIFEST_BLOB_UNKNOWN']);
    await pushImage(f.client, 'r', 'arm', arm);
    expect((await pushManifest(f.client, 'r', 'multi', index)).status).toBe(201);
    const get = await f.client.get('/v2/r/manifests/multi').set('Accept', `${OCI_MANIFEST}, ${OCI_INDEX}`);
    expect(get.headers['content-type']).toBe(OCI_INDEX);

    const dockerAmd = tinyImage({ format: 'docker' });
    await pushImage(f.client, 'd', 'amd', dockerAmd);
    const list = tinyIndex([dockerAmd], 'docker');
    expect((await pushManifest(f.client, 'd', 'multi', list)).status).toBe(201);
    expect((await f.client.head('/v2/d/manifests/multi').set('Accept', DOCKER_LIST)).headers['content-type']).toBe(DOCKER_LIST);
  });

  it('answers MANIFEST_UNKNOWN when the Accept header does not take the stored type', async () => {
    await pushImage(f.client, 'r', 'v1', tinyImage());
    const res = await f.client.get('/v2/r/manifests/v1').set('Accept', DOCKER_MANIFEST);
    expect([res.status, errorCode(res)]).toEqual([404, 'MANIFEST_UNKNOWN']);
    expect((await f.client.get('/v2/r/manifests/v1').set('Accept', '*/*')).status).toBe(200);
  });

  it('refuses malformed manifests with MANIFEST_INVALID', async () => {
    const img = tinyImage();
    for (const b of img.blobs) await pushBlob(f.client, 'r', b);
    const good = JSON.parse(img.manifest.bytes.toString());
    const cases: Array<[string, string, string]> = [
      ['not json', OCI_MANIFEST, '{nope'],
      ['array', OCI_MANIFEST, '[]'],
      ['schema 1', OCI_MANIFEST, JSON.stringify({ ...good, schemaVersion: 1 })],
      ['mediaType mismatch', DOCKER_MANIFEST, JSON.stringify(good)],
      ['unknown content type', 'text/plain', JSON.stringify(good)],
      ['no config', OCI_MANIFEST, JSON.stringify({ ...good, config: undefined })],
      ['layers not a list', OCI_MANIFEST, JSON.stringify({ ...good, layers: {} })],
      ['bad layer digest', OCI_MANIFEST, JSON.stringify({ ...good, layers: [{ ...good.layers[0], digest: 'sha256:xyz' }] })],
      ['negative size', OCI_MANIFEST, JSON.stringify({ ...good, config: { ...good.config, size: -1 } })],
      ['index without manifests', OCI_INDEX, JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX })],
    ];
    for (const [label, type, body] of cases) {
      const res = await f.client.put('/v2/r/manifests/bad').set('Content-Type', type).send(body);
      expect([label, res.status, errorCode(res)]).toEqual([label, 400, 'MANIFEST_INVALID']);
    }
    expect(errorCode(await f.client.get('/v2/r/manifests/bad'))).toBe('MANIFEST_UNKNOWN');
  });

  it('takes the media type from the payload when the Content-Type is generic', async () => {
    const img = tinyImage();
    for (const b of img.blobs) await pushBlob(f.client, 'r', b);
    const res = await f.client.put('/v2/r/manifests/v1').set('Content-Type', 'application/json').send(img.manifest.bytes.toString());
    expect(res.status).toBe(201);
    expect((await f.client.head('/v2/r/manifests/v1')).headers['content-type']).toBe(OCI_MANIFEST);
  });

  const invalidTags = ['.dot', '-dash', 'a'.repeat(129), 'sp%20ace', '.INVALID_MANIFEST_NAME'];
  const invalidDigests = ['sha256:abc', 'md5:' + 'a'.repeat(32), 'sha256:' + 'A'.repeat(64), 'sha512:' + 'a'.repeat(64), 'sha256%3Axyz'];

  it('refuses a PUT to an invalid tag with TAG_INVALID, and to an invalid digest with DIGEST_INVALID', async () => {
    const img = tinyImage();
    for (const b of img.blobs) await pushBlob(f.client, 'r', b);
    for (const tag of invalidTags) {
      const res = await pushManifest(f.client, 'r', tag, img.manifest);
      expect([tag, res.status, errorCode(res)]).toEqual([tag, 400, 'TAG_INVALID']);
    }
    for (const digest of invalidDigests) {
      const res = await pushManifest(f.client, 'r', digest, img.manifest);
      expect([digest, res.status, errorCode(res)]).toEqual([digest, 400, 'DIGEST_INVALID']);
    }
  });

  it('answers GET, HEAD and DELETE of a reference that is neither a tag nor a digest 404 MANIFEST_UNKNOWN', async () => {
    await pushImage(f.client, 'r', 'v1', tinyImage());
    for (const ref of [...invalidTags, ...invalidDigests]) {
      const get = await f.client.get(`/v2/r/manifests/${ref}`);
      expect([ref, get.status, errorCode(get)]).toEqual([ref, 404, 'MANIFEST_UNKNOWN']);
      expect(get.headers['content-type']).toMatch(/^application\/json/);
      const head = await f.client.head(`/v2/r/manifests/${ref}`);
      expect([ref, head.status]).toEqual([ref, 404]);
      const del = await f.client.delete(`/v2/r/manifests/${ref}`);
      expect([ref, del.status, errorCode(del)]).toEqual([ref, 404, 'MANIFEST_UNKNOWN']);
    }
    // Also in a repository that does not exist, and with deletes disabled.
    expect(errorCode(await f.client.get('/v2/none/manifests/.x'))).toBe('MANIFEST_UNKNOWN');
    const ro = await registryFixture({ deleteEnabled: false });
    try {
      const del = await ro.client.delete('/v2/r/manifests/-x');
      expect([del.status, errorCode(del)]).toEqual([404, 'MANIFEST_UNKNOWN']);
    } finally {
      await ro.cleanup();
    }
  });

  it('sees its own deletes and tag moves at once, after reads that filled the cache', async () => {
    const img = tinyImage();
    const other = tinyImage({ layers: [{ 'b.txt': 'b' }] });
    await pushImage(f.client, 'r', 'v1', img);
    await pushImage(f.client, 'r', 'other', other);
    for (const ref of ['v1', img.manifest.digest]) expect((await f.client.get(`/v2/r/manifests/${ref}`)).status).toBe(200);
    // The tag moves: the next GET by tag answers the other manifest.
    await pushManifest(f.client, 'r', 'v1', other.manifest);
    const moved = await f.client.get('/v2/r/manifests/v1').buffer(true).parse(binary);
    expect(moved.headers['docker-content-digest']).toBe(other.manifest.digest);
    expect(Buffer.compare(moved.body, other.manifest.bytes)).toBe(0);
    // Deleted by digest while cached: 404 right after, by digest, on GET and HEAD.
    expect((await f.client.delete(`/v2/r/manifests/${img.manifest.digest}`)).status).toBe(202);
    expect(errorCode(await f.client.get(`/v2/r/manifests/${img.manifest.digest}`))).toBe('MANIFEST_UNKNOWN');
    expect((await f.client.head(`/v2/r/manifests/${img.manifest.digest}`)).status).toBe(404);
    // Pushed again, it is served again.
    await pushManifest(f.client, 'r', 'again', img.manifest);
    expect((await f.client.get(`/v2/r/manifests/${img.manifest.digest}`)).status).toBe(200);
  });

  it('answers MANIFEST_UNKNOWN for unknown tags and digests', async () => {
    expect(errorCode(await f.client.get('/v2/r/manifests/nope'))).toBe('MANIFEST_UNKNOWN');
    expect(errorCode(await f.client.get(`/v2/r/manifests/${sha256(Buffer.from('x'))}`))).toBe('MANIFEST_UNKNOWN');
    expect((await f.client.head('/v2/r/manifests/nope')).status).toBe(404);
  });

  it('deletes by digest, removing the tags that pointed at it', async () => {
    const img = tinyImage();
    await pushImage(f.client, 'r', 'v1', img);
    await pushManifest(f.client, 'r', 'v2', img.manifest);
    const other = tinyImage({ layers: [{ 'b.txt': 'b' }] });
    await pushImage(f.client, 'r', 'other', other);
    expect((await f.client.delete(`/v2/r/manifests/${img.manifest.digest}`)).status).toBe(202);
    expect(errorCode(await f.client.get(`/v2/r/manifests/${img.manifest.digest}`))).toBe('MANIFEST_UNKNOWN');
    expect(errorCode(await f.client.get('/v2/r/manifests/v1'))).toBe('MANIFEST_UNKNOWN');
    expect((await f.client.get('/v2/r/tags/list')).body.tags).toEqual(['other']);
    expect(errorCode(await f.client.delete(`/v2/r/manifests/${img.manifest.digest}`))).toBe('MANIFEST_UNKNOWN');
  });

  it('deletes a tag, keeping the manifest', async () => {
    const img = tinyImage();
    await pushImage(f.client, 'r', 'v1', img);
    expect((await f.client.delete('/v2/r/manifests/v1')).status).toBe(202);
    expect(errorCode(await f.client.get('/v2/r/manifests/v1'))).toBe('MANIFEST_UNKNOWN');
    expect((await f.client.get(`/v2/r/manifests/${img.manifest.digest}`)).status).toBe(200);
    expect(errorCode(await f.client.delete('/v2/r/manifests/v1'))).toBe('MANIFEST_UNKNOWN');
  });
});

describe('listings', () => {
  it('lists tags sorted, paginated with n and last and a Link header', async () => {
    const img = tinyImage();
    await pushImage(f.client, 'a/r', 'c', img);
    for (const tag of ['a', 'e', 'b', 'd']) await pushManifest(f.client, 'a/r', tag, img.manifest);
    expect((await f.client.get('/v2/a/r/tags/list')).body).toEqual({ name: 'a/r', tags: ['a', 'b', 'c', 'd', 'e'] });
    const first = await f.client.get('/v2/a/r/tags/list?n=2');
    expect(first.body.tags).toEqual(['a', 'b']);
    expect(first.headers.link).toBe('</v2/a/r/tags/list?last=b&n=2>; rel="next"');
    const second = await f.client.get('/v2/a/r/tags/list?n=2&last=b');
    expect(second.body.tags).toEqual(['c', 'd']);
    const last = await f.client.get('/v2/a/r/tags/list?n=2&last=d');
    expect(last.body.tags).toEqual(['e']);
    expect(last.headers.link).toBeUndefined();
    expect(errorCode(await f.client.get('/v2/a/r/tags/list?n=x'))).toBe('PAGINATION_NUMBER_INVALID');
  });

  it('answers NAME_UNKNOWN for tags of a repository that does not exist', async () => {
    const res = await f.client.get('/v2/no/such/tags/list');
    expect([res.status, errorCode(res)]).toEqual([404, 'NAME_UNKNOWN']);
  });

  it('lists the catalog sorted and paginated', async () => {
    const blob = content('application/octet-stream', Buffer.from('x'));
    for (const name of ['zeta', 'alpha/one', 'alpha/two', 'mid']) await pushBlob(f.client, name, blob);
    expect((await f.client.get('/v2/_catalog')).body).toEqual({ repositories: ['alpha/one', 'alpha/two', 'mid', 'zeta'] });
    const page = await f.client.get('/v2/_catalog?n=3');
    expect(page.body.repositories).toEqual(['alpha/one', 'alpha/two', 'mid']);
    expect(page.headers.link).toBe('</v2/_catalog?last=mid&n=3>; rel="next"');
    expect((await f.client.get('/v2/_catalog?n=3&last=mid')).body.repositories).toEqual(['zeta']);
  });
});

/** A supertest parser that keeps the body as bytes. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
function binary(res: any, done: (err: Error | null, body: Buffer) => void): void {
  const chunks: Buffer[] = [];
  res.on('data', (c: Buffer) => chunks.push(c));
  res.on('end', () => done(null, Buffer.concat(chunks)));
}
