// storage.maintenance.uploadpurging: abandoned uploads are removed after `age`, every `interval`.
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseRegistryConfig } from '../../demo-registry/config';
import { Logger } from '../../demo-registry/log';
import { startRegistry, type RunningRegistry } from '../../demo-registry/main';
import { findUploads, purgeUploads } from '../../demo-registry/maintenance';
import { FilesystemStorage } from '../../demo-registry/storage';
import { sleep, waitFor } from '../helpers/wait';

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'demo-registry-purge-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function start(name: string, uploadpurging: Record<string, unknown>, extra: Record<string, unknown> = {}) {
  const config = parseRegistryConfig({
    version: '0.1',
    http: { addr: '127.0.0.1:0' },
    log: { level: 'debug' },
    storage: { filesystem: { rootdirectory: path.join(dir, name) }, maintenance: { uploadpurging } },
    ...extra,
  });
  const lines: string[] = [];
  const registry = await startRegistry(config, { logger: new Logger(config.log, (l) => lines.push(l)) });
  return { registry, lines };
}

async function startUpload(registry: RunningRegistry, repo: string): Promise<string> {
  const res = await fetch(`${registry.url}/v2/${repo}/blobs/uploads/`, { method: 'POST' });
  expect(res.status).toBe(202);
  return new URL(res.headers.get('location')!, registry.url).href;
}

const uploadDir = (registry: RunningRegistry, repo: string, url: string) => path.join(registry.storage.root, 'repositories', repo, '_uploads', url.slice(url.lastIndexOf('/') + 1));

describe('upload purging', () => {
  it('removes uploads older than age, every interval, and leaves younger ones', async () => {
    const { registry, lines } = await start('purge', { enabled: true, age: '1s', interval: '100ms' });
    try {
      const old = await startUpload(registry, 'team/app');
      await sleep(1100);
      const young = await startUpload(registry, 'team/app');
      await waitFor(() => !existsSync(uploadDir(registry, 'team/app', old)), { describe: () => lines });
      expect(existsSync(uploadDir(registry, 'team/app', young))).toBe(true);
      expect((await fetch(old)).status).toBe(404); // BLOB_UPLOAD_UNKNOWN
      expect((await fetch(young)).status).toBe(204);
      expect(lines.some((l) => /msg="upload purge: removed an abandoned upload" .*repository=team\/app/.test(l))).toBe(true);
      // The young one goes too once it is old enough.
      await waitFor(() => !existsSync(uploadDir(registry, 'team/app', young)));
    } finally {
      await registry.close();
    }
  });

  it('only reports with dryrun, and does nothing when disabled', async () => {
    const dry = await start('dry', { age: '100ms', interval: '100ms', dryrun: true });
    try {
      const url = await startUpload(dry.registry, 'dry');
      await waitFor(() => dry.lines.some((l) => l.includes('upload purge (dry run): would remove an abandoned upload')), { describe: () => dry.lines });
      expect(existsSync(uploadDir(dry.registry, 'dry', url))).toBe(true);
    } finally {
      await dry.registry.close();
    }
    const off = await start('off', { enabled: false, age: '100ms', interval: '100ms' });
    try {
      const url = await startUpload(off.registry, 'off');
      await sleep(400);
      expect(existsSync(uploadDir(off.registry, 'off', url))).toBe(true);
      expect(off.lines.some((l) => l.includes('upload purge'))).toBe(false);
    } finally {
      await off.registry.close();
    }
  });

  it('finds uploads by their start time, in nested repositories', async () => {
    const storage = new FilesystemStorage(path.join(dir, 'unit'));
    await storage.init();
    const a = await storage.repository('a/b/c').uploads.start();
    const b = await storage.repository('d').uploads.start();
    const found = await findUploads(storage.root);
    expect(found.map((u) => [u.repository, u.id]).sort()).toEqual([['a/b/c', a], ['d', b]].sort());
    expect(await purgeUploads(storage.root, { ageMs: 60_000, dryRun: false })).toEqual([]);
    const later = new Date(Date.now() + 120_000);
    expect((await purgeUploads(storage.root, { ageMs: 60_000, dryRun: false, now: later })).length).toBe(2);
    expect(await findUploads(storage.root)).toEqual([]);
  });
});
