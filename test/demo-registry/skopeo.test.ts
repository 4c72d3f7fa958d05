// End to end with the real skopeo: push, cross-repository copy (mount), inspect, pull and
// delete against the demo registry, checking that the webhook receives what Debian's
// docker-registry 2.8.2 sends for the same commands (recorded by hand; see EXPECTED).
import { execFile, execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import type { Event } from '../../lib';
import { parseRegistryConfig } from '../../demo-registry/config';
import { startRegistry, type RunningRegistry } from '../../demo-registry/main';
import { FIXTURE_DIR as FIXTURES } from '../helpers/fixtures';
import { TestReceiver } from '../helpers/http-receiver';
import { content, tinyImage, writeOciLayout, type TinyImage } from '../helpers/oci';

const SKOPEO = '/usr/bin/skopeo';
const run = promisify(execFile);
const hasSkopeo = existsSync(SKOPEO);

if (!hasSkopeo && !process.env.CI) {
  console.warn(`\n*** skopeo.test.ts SKIPPED: ${SKOPEO} is not installed; the end-to-end test with a real client did not run ***\n`);
}

describe('skopeo is available', () => {
  (process.env.CI ? it : it.skip)('in CI', () => {
    expect(existsSync(SKOPEO)).toBe(true);
  });
});

/**
 * The events docker-registry 2.8.2 sent, in order, for each step below, with skopeo 1.9.3
 * and this test's image (L = layer, C = config, M = manifest; R = demo/app, O = other/app).
 * Blob operations inside one step may run in parallel, so a step's events are compared
 * without regard to their order; the steps themselves are compared in order.
 */
type Expected = [action: string, method: string, kind: 'L' | 'C' | 'M' | 'tag', repo: 'R' | 'O', extra?: { tag?: string; from?: 'R' }];
const EXPECTED: Array<[step: string, events: Expected[]]> = [
  ['push v1', [['push', 'PUT', 'L', 'R'], ['push', 'PUT', 'C', 'R'], ['push', 'PUT', 'M', 'R', { tag: 'v1' }]]],
  ['push v2', [['pull', 'HEAD', 'L', 'R'], ['pull', 'HEAD', 'C', 'R'], ['push', 'PUT', 'M', 'R', { tag: 'v2' }]]],
  [
    'copy to other/app',
    [
      ['pull', 'GET', 'M', 'R', { tag: 'v1' }],
      ['pull', 'HEAD', 'L', 'R'],
      ['mount', 'POST', 'L', 'O', { from: 'R' }],
      ['pull', 'GET', 'C', 'R'],
      ['push', 'PUT', 'C', 'O'],
      ['push', 'PUT', 'M', 'O', { tag: 'v1' }],
    ],
  ],
  ['inspect', [['pull', 'GET', 'M', 'R', { tag: 'v1' }], ['pull', 'GET', 'C', 'R']]],
  ['pull', [['pull', 'GET', 'M', 'R', { tag: 'v1' }], ['pull', 'GET', 'L', 'R'], ['pull', 'GET', 'C', 'R']]],
  [
    'delete',
    [
      ['pull', 'GET', 'M', 'R', { tag: 'v1' }],
      ['delete', 'DELETE', 'M', 'R'],
      ['delete', 'DELETE', 'tag', 'R', { tag: 'v1' }],
      ['delete', 'DELETE', 'tag', 'R', { tag: 'v2' }],
    ],
  ],
];

/** The target docker-registry sends for an expected event (with `events.includereferences` on). */
function expectedTarget(img: TinyImage, host: string, [action, , kind, repoKey, extra = {}]: Expected): Record<string, unknown> {
  const repo = repoKey === 'R' ? 'demo/app' : 'other/app';
  if (kind === 'tag') return { repository: repo, tag: extra.tag };
  const c = kind === 'L' ? img.layers[0] : kind === 'C' ? img.config : img.manifest;
  if (action === 'delete') return { digest: c.digest, repository: repo };
  const isManifest = kind === 'M';
  return {
    mediaType: isManifest ? c.mediaType : 'application/octet-stream',
    size: c.size,
    digest: c.digest,
    length: c.size,
    repository: repo,
    ...(extra.from ? { fromRepository: 'demo/app' } : {}),
    url: `http://${host}/v2/${repo}/${isManifest ? 'manifests' : 'blobs'}/${c.digest}`,
    ...(extra.tag ? { tag: extra.tag } : {}),
    ...(isManifest ? { references: img.blobs.map((b) => ({ mediaType: b.mediaType, size: b.size, digest: b.digest })) } : {}),
  };
}

/** Key paths of a value in order, e.g. `target.url`; what "same shape as the fixture" means. */
function keyPaths(value: unknown, prefix = ''): string[] {
  if (typeof value !== 'object' || value === null) return [];
  if (Array.isArray(value)) return value.length ? keyPaths(value[0], `${prefix}[]`) : [];
  return Object.entries(value).flatMap(([k, v]) => [`${prefix}${k}`, ...keyPaths(v, `${prefix}${k}.`)]);
}

(hasSkopeo ? describe : describe.skip)('skopeo against the demo registry', () => {
  const AUTH = 'alice:pw';
  let dir: string;
  let receiver: TestReceiver;
  let registry: RunningRegistry;
  let host: string;
  let img: TinyImage;
  const sentinel = content('application/octet-stream', Buffer.from('sentinel'));
  const authHeader = 'Basic ' + Buffer.from(AUTH).toString('base64');

  beforeAll(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'demo-registry-skopeo-'));
    writeFileSync(path.join(dir, 'htpasswd'), execFileSync('/usr/bin/htpasswd', ['-nbB', 'alice', 'pw']));
    img = tinyImage({ layers: [{ 'etc/motd': 'hello from the demo registry\n' }] });
    await writeOciLayout(path.join(dir, 'src'), [{ tag: 'v1', image: img }]);
    receiver = await new TestReceiver().start();
    registry = await startRegistry(
      parseRegistryConfig({
        version: '0.1',
        http: { addr: '127.0.0.1:0' },
        auth: { htpasswd: { realm: 'skopeo-test', path: path.join(dir, 'htpasswd') } },
        storage: { filesystem: { rootdirectory: path.join(dir, 'data') }, delete: { enabled: true } },
        notifications: {
          events: { includereferences: true },
          endpoints: [{ name: 'test', url: receiver.url, headers: { Authorization: ['Bearer secret-token'] }, backoff: '10ms' }],
        },
      }),
    );
    host = new URL(registry.url).host;
    const res = await fetch(`${registry.url}/v2/sentinel/blobs/uploads/?digest=${sentinel.digest}`, {
      method: 'POST',
      headers: { Authorization: authHeader },
      body: sentinel.bytes,
    });
    expect(res.status).toBe(201);
  });

  afterAll(async () => {
    await registry?.close();
    await receiver?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  /** Waits until every event so far has arrived (a sentinel pull comes after them) and returns those since `from`. */
  async function eventsSince(from: number): Promise<{ events: Event[]; next: number }> {
    const res = await fetch(`${registry.url}/v2/sentinel/blobs/${sentinel.digest}`, { method: 'HEAD', headers: { Authorization: authHeader } });
    expect(res.status).toBe(200);
    const isSentinel = (e: Event) => e.target.repository === 'sentinel';
    await receiver.until((r) => r.events.slice(from).some((e) => isSentinel(e) && e.request.method === 'HEAD'));
    const end = from + receiver.events.slice(from).findIndex((e) => isSentinel(e) && e.request.method === 'HEAD');
    return { events: receiver.events.slice(from, end).filter((e) => !isSentinel(e)), next: end + 1 };
  }

  const skopeo = (...args: string[]) => run(SKOPEO, ['--insecure-policy', ...args], { env: { ...process.env, HOME: dir } });
  const src = (ref: string) => ['--src-tls-verify=false', '--src-creds', AUTH, `docker://${host}/${ref}`];
  const dst = (ref: string) => ['--dest-tls-verify=false', '--dest-creds', AUTH, `docker://${host}/${ref}`];

  it('pushes, copies, inspects, pulls and deletes, with the events docker-registry 2.8.2 sends', async () => {
    const steps: Record<string, () => Promise<unknown>> = {
      'push v1': () => skopeo('copy', `oci:${path.join(dir, 'src')}:v1`, ...dst('demo/app:v1')),
      'push v2': () => skopeo('copy', `oci:${path.join(dir, 'src')}:v1`, ...dst('demo/app:v2')),
      'copy to other/app': () => skopeo('copy', ...src('demo/app:v1'), ...dst('other/app:v1')),
      inspect: async () => {
        const { stdout } = await skopeo('inspect', '--tls-verify=false', '--creds', AUTH, `docker://${host}/demo/app:v1`);
        expect(JSON.parse(stdout)).toMatchObject({ Digest: img.manifest.digest, Architecture: 'amd64', Os: 'linux' });
      },
      pull: async () => {
        await skopeo('copy', ...src('demo/app:v1'), `oci:${path.join(dir, 'pulled')}:v1`);
        for (const c of [...img.blobs, img.manifest]) {
          expect(readFileSync(path.join(dir, 'pulled', 'blobs', 'sha256', c.digest.slice(7)))).toEqual(c.bytes);
        }
        expect(readdirSync(path.join(dir, 'pulled', 'blobs', 'sha256')).length).toBe(3);
      },
      delete: () => skopeo('delete', '--tls-verify=false', '--creds', AUTH, `docker://${host}/demo/app:v1`),
    };

    let cursor = receiver.events.length;
    const all: Event[] = [];
    for (const [step, expected] of EXPECTED) {
      await steps[step]();
      const { events, next } = await eventsSince(cursor);
      cursor = next;
      all.push(...events);
      const normalize = (list: Array<{ action: string; method: string; target: unknown }>) =>
        list.map((e) => JSON.stringify([e.action, e.method, e.target])).sort();
      const got = events.map((e) => ({ action: e.action, method: e.request.method, target: e.target }));
      const want = expected.map((x) => ({ action: x[0], method: x[1], target: expectedTarget(img, host, x) }));
      expect([step, normalize(got)]).toEqual([step, normalize(want)]);
    }

    // What every event carries, as docker-registry fills it.
    for (const e of all) {
      expect(e.actor).toEqual({ name: 'alice' });
      expect(e.request).toEqual({ id: expect.any(String), addr: expect.stringMatching(/^127\.0\.0\.1:\d+$/), host, method: e.request.method, useragent: expect.stringMatching(/^skopeo\//) });
      expect(e.source).toEqual({ addr: `${os.hostname()}:${new URL(registry.url).port}`, instanceID: expect.any(String) });
    }
    // A manifest delete and its tag deletes belong to one request.
    const deletes = all.filter((e) => e.action === 'delete');
    expect(new Set(deletes.map((e) => e.request.id)).size).toBe(1);
    // The registry is left as skopeo's delete leaves docker-registry: no tags in demo/app, other/app intact.
    const tags = await fetch(`${registry.url}/v2/demo/app/tags/list`, { headers: { Authorization: authHeader } });
    expect(((await tags.json()) as { tags: string[] }).tags).toEqual([]);
    const other = await fetch(`${registry.url}/v2/other/app/manifests/v1`, { method: 'HEAD', headers: { Authorization: authHeader } });
    expect(other.headers.get('docker-content-digest')).toBe(img.manifest.digest);
    // Every delivery looks like docker-registry's, headers included.
    expect(receiver.requests.every((r) => r.headers['content-type'] === 'application/vnd.docker.distribution.events.v1+json')).toBe(true);
    expect(receiver.requests.every((r) => r.headers.authorization === 'Bearer secret-token')).toBe(true);

    // Field by field and in the same key order as the captured fixtures.
    const kinds: Record<string, (e: Event) => boolean> = {
      'blob-push': (e) => e.action === 'push' && e.target.mediaType === 'application/octet-stream',
      'blob-pull-head': (e) => e.action === 'pull' && e.request.method === 'HEAD' && e.target.mediaType === 'application/octet-stream',
      'blob-mount': (e) => e.action === 'mount',
      'manifest-push-with-references': (e) => e.action === 'push' && e.target.mediaType !== 'application/octet-stream',
      'manifest-pull-by-tag': (e) => e.action === 'pull' && e.target.tag !== undefined,
      'manifest-delete': (e) => e.action === 'delete' && e.target.digest !== undefined,
      'tag-delete': (e) => e.action === 'delete' && e.target.tag !== undefined,
    };
    for (const [fixture, matches] of Object.entries(kinds)) {
      const theirs = (JSON.parse(readFileSync(path.join(FIXTURES, `${fixture}.json`), 'utf8')) as { body: { events: Event[] } }).body.events[0];
      const ours = all.find(matches);
      expect([fixture, keyPaths(ours)]).toEqual([fixture, keyPaths(theirs)]);
    }
  });
});
