// `npm start`, the README's main job: the demo registry and the bundled receiver, and the
// events of the README's skopeo copy printed by the receiver.
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { promisify } from 'node:util';
import { freePort, spawnTs } from '../helpers/registry-process';
import { waitFor } from '../helpers/wait';

const SKOPEO = '/usr/bin/skopeo';
const ROOT = path.resolve(__dirname, '..', '..');
const run = promisify(execFile);

if (!existsSync(SKOPEO) && !process.env.CI) console.warn('\n*** start.test.ts SKIPPED: skopeo is not installed ***\n');

(existsSync(SKOPEO) || process.env.CI ? describe : describe.skip)('npm start (demo-registry/start.ts)', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'npm-start-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("prints the events of the README's skopeo copy, and stops on Ctrl-C", async () => {
    const [port, debugPort] = [await freePort(), await freePort()];
    // The demo's own config, with its data and addresses moved aside by REGISTRY_* variables.
    const env = {
      ...process.env,
      REGISTRY_HTTP_ADDR: `127.0.0.1:${port}`,
      REGISTRY_HTTP_DEBUG_ADDR: `127.0.0.1:${debugPort}`,
      REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY: path.join(dir, 'registry'),
      REGISTRY_AUTH_HTPASSWD_PATH: path.join(dir, 'htpasswd'),
      REGISTRY_NOTIFICATIONS_QUEUE_PATH: path.join(dir, 'notifications.db'),
    };
    const child = spawnTs('demo-registry/start.ts', [], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    const stdout: string[] = [];
    const stderr: string[] = [];
    createInterface({ input: child.stdout! }).on('line', (l) => stdout.push(l));
    createInterface({ input: child.stderr! }).on('line', (l) => stderr.push(l));
    const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
    try {
      await waitFor(() => stderr.some((l) => l.includes('Ctrl-C stops both')), { describe: () => stderr.join('\n') });
      const copy = stderr.find((l) => l.trim().startsWith('skopeo copy'))!.trim().split(/\s+/);
      expect(copy.at(-1)).toBe(`docker://127.0.0.1:${port}/demo/app:v1`);
      await run(SKOPEO, copy.slice(1), { cwd: ROOT });
      // The receiver prints one JSON line per event: the blobs and the manifest, pushed.
      await waitFor(() => stdout.filter((l) => l.startsWith('{')).length >= 3, { describe: () => [...stdout, ...stderr].join('\n') });
      const events = stdout.filter((l) => l.startsWith('{')).map((l) => JSON.parse(l));
      expect(events.map((e) => e.action)).toEqual(['push', 'push', 'push']);
      expect(events.at(-1).target).toMatchObject({ repository: 'demo/app', tag: 'v1' });
      expect(events.at(-1).actor).toEqual({ name: 'alice' });
    } finally {
      child.kill('SIGINT');
    }
    expect(await exited).toBe(0);
  }, 60_000);
});
