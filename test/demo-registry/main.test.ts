import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseRegistryConfig } from '../../demo-registry/config';
import { parseMainArgs, startRegistry, type RunningRegistry } from '../../demo-registry/main';
import { TestReceiver } from '../helpers/http-receiver';
import { content, sha256 } from '../helpers/oci';

const ROOT = path.join(__dirname, '..', '..');
const TSX = path.join(ROOT, 'node_modules', '.bin', 'tsx');
const MAIN = path.join(ROOT, 'demo-registry', 'main.ts');

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'demo-registry-main-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('startRegistry', () => {
  let receiver: TestReceiver;
  let registry: RunningRegistry;
  beforeAll(async () => {
    receiver = await new TestReceiver().start();
    registry = await startRegistry(
      parseRegistryConfig({
        version: '0.1',
        http: { addr: '127.0.0.1:0', host: 'https://registry.example.com', debug: { addr: '127.0.0.1:0' } },
        storage: { filesystem: { rootdirectory: path.join(dir, 'data') }, delete: { enabled: true } },
        notifications: {
          endpoints: [{ name: 'hook', url: receiver.url, headers: { Authorization: ['Bearer t'] }, backoff: '10ms' }],
        },
      }),
    );
  });
  afterAll(async () => {
    await registry.close();
    await receiver.stop();
  });

  it('serves the API and delivers events with URLs on http.host', async () => {
    const blob = content('application/octet-stream', Buffer.from('served'));
    const res = await fetch(`${registry.url}/v2/a/blobs/uploads/?digest=${blob.digest}`, { method: 'POST', body: blob.bytes });
    expect(res.status).toBe(201);
    await receiver.until((r) => r.events.length === 1);
    expect(receiver.events[0].target.url).toBe(`https://registry.example.com/v2/a/blobs/${blob.digest}`);
    expect(receiver.requests[0].headers.authorization).toBe('Bearer t');
    expect(receiver.events[0].source.addr).toBe(`${os.hostname()}:${new URL(registry.url).port}`);
  });

  it('serves /debug/vars in the expvar shape, credentials redacted, and /metrics', async () => {
    const vars = (await (await fetch(`${registry.debugUrl}/debug/vars`)).json()) as {
      registry: { notifications: { endpoints: Array<{ name: string; url: string; Headers: Record<string, string[]>; Metrics: { Events: number } }> } };
    };
    const [endpoint] = vars.registry.notifications.endpoints;
    expect(endpoint).toMatchObject({ name: 'hook', url: receiver.url });
    expect(endpoint.Headers.Authorization).toEqual(['<redacted>']);
    expect(endpoint.Metrics.Events).toBeGreaterThanOrEqual(1);
    const metrics = await fetch(`${registry.debugUrl}/metrics`);
    expect(metrics.headers.get('content-type')).toMatch(/^text\/plain/);
    expect(await metrics.text()).toMatch(/registry_notifications_events_total\{type="Events",endpoint="hook"\} [1-9]/);
  });

  it('fails to start on an address in use, releasing what it opened', async () => {
    const config = parseRegistryConfig({
      version: '0.1',
      http: { addr: `127.0.0.1:${new URL(registry.url).port}` },
      storage: { filesystem: { rootdirectory: path.join(dir, 'busy') } },
    });
    await expect(startRegistry(config)).rejects.toThrow(/EADDRINUSE/);
  });

  it('closes once, however often asked', async () => {
    const other = await startRegistry(
      parseRegistryConfig({ version: '0.1', http: { addr: '127.0.0.1:0' }, storage: { filesystem: { rootdirectory: path.join(dir, 'o') } } }),
    );
    await Promise.all([other.close(), other.close()]);
    await expect(fetch(`${other.url}/v2/`)).rejects.toThrow();
  });
});

describe('the command line', () => {
  it('needs --config', () => {
    expect(() => parseMainArgs([])).toThrow('missing --config FILE');
    expect(parseMainArgs(['--config', 'x.yml'])).toEqual({ config: 'x.yml' });
    expect(() => parseMainArgs(['--port', '1'])).toThrow();
  });

  function run(args: string[]) {
    const child = spawn(TSX, [MAIN, ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    const line = (re: RegExp) =>
      new Promise<RegExpMatchArray>((resolve, reject) => {
        const check = () => {
          const m = stderr.match(re);
          if (m) resolve(m);
        };
        child.stderr.on('data', check);
        child.on('exit', () => reject(new Error(`exited before ${re}: ${stderr}`)));
        check();
      });
    return { child, exited, line, stderr: () => stderr };
  }

  it('runs in the foreground and exits 0 on SIGTERM', async () => {
    const file = path.join(dir, 'cli.yml');
    writeFileSync(file, `version: 0.1\nhttp:\n  addr: 127.0.0.1:0\nstorage:\n  filesystem:\n    rootdirectory: ${path.join(dir, 'cli')}\n`);
    const proc = run(['--config', file]);
    const [, url] = await proc.line(/listening on (http:\/\/\S+?)[\s,]/);
    const res = await fetch(`${url}/v2/`);
    expect(res.status).toBe(200);
    expect(res.headers.get('docker-distribution-api-version')).toBe('registry/2.0');
    expect((await fetch(`${url}/v2/a/blobs/${sha256(Buffer.from('x'))}`)).status).toBe(404);
    proc.child.kill('SIGTERM');
    expect(await proc.exited).toBe(0);
    expect(proc.stderr()).toContain('SIGTERM: closing');
  });

  it('exits 1 naming the field of a bad configuration, and 2 without --config', async () => {
    const file = path.join(dir, 'bad.yml');
    writeFileSync(file, `version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: /tmp/x\n  delete:\n    enabled: sometimes\n`);
    const bad = run(['--config', file]);
    expect(await bad.exited).toBe(1);
    expect(bad.stderr()).toContain('storage.delete.enabled: expected true or false, got string "sometimes"');
    const usage = run([]);
    expect(await usage.exited).toBe(2);
    expect(usage.stderr()).toContain('usage: demo-registry --config FILE');
  });
});
