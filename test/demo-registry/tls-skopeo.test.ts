// End to end over HTTPS: a CA and a server certificate made with openssl, the demo
// serving `http.tls` with a `log:` section in the same config, and skopeo pushing to it
// while verifying the certificate against that CA (--dest-cert-dir).
import { execFile, execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { parseRegistryConfig } from '../../demo-registry/config';
import { Logger } from '../../demo-registry/log';
import { startRegistry, type RunningRegistry } from '../../demo-registry/main';
import { TestReceiver } from '../helpers/http-receiver';
import { makeCertificates, OPENSSL } from './certificates';
import { tinyImage, writeOciLayout, type TinyImage } from '../helpers/oci';

const SKOPEO = '/usr/bin/skopeo';
const HTPASSWD = '/usr/bin/htpasswd';
const run = promisify(execFile);
const available = [SKOPEO, OPENSSL, HTPASSWD].every(existsSync);

if (!available && !process.env.CI) {
  console.warn(`\n*** tls-skopeo.test.ts SKIPPED: needs ${SKOPEO}, ${OPENSSL} and ${HTPASSWD}; the HTTPS end-to-end test did not run ***\n`);
}

describe('skopeo, openssl and htpasswd are available', () => {
  (process.env.CI ? it : it.skip)('in CI', () => {
    expect(available).toBe(true);
  });
});

(available ? describe : describe.skip)('skopeo over HTTPS (http.tls) with a log: section', () => {
  let dir: string;
  let receiver: TestReceiver;
  let registry: RunningRegistry;
  let img: TinyImage;
  let host: string;
  const lines: string[] = [];
  const AUTH = 'alice:pw';

  beforeAll(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'demo-registry-tls-'));
    const { caCert, cert, key } = makeCertificates(dir);
    // skopeo trusts the *.crt files of --dest-cert-dir as CAs.
    mkdirSync(path.join(dir, 'trust'));
    copyFileSync(caCert, path.join(dir, 'trust', 'ca.crt'));
    writeFileSync(path.join(dir, 'htpasswd'), execFileSync(HTPASSWD, ['-nbB', 'alice', 'pw']));
    img = tinyImage({ layers: [{ 'etc/motd': 'hello over TLS\n' }] });
    await writeOciLayout(path.join(dir, 'src'), [{ tag: 'v1', image: img }]);
    receiver = await new TestReceiver().start();
    const config = parseRegistryConfig({
      version: '0.1',
      log: { level: 'info', formatter: 'text', fields: { service: 'registry', environment: 'test' } },
      http: { addr: '127.0.0.1:0', tls: { certificate: cert, key, minimumtls: 'tls1.2' }, headers: { 'X-Content-Type-Options': ['nosniff'] } },
      auth: { htpasswd: { realm: 'tls-test', path: path.join(dir, 'htpasswd') } },
      storage: { filesystem: { rootdirectory: path.join(dir, 'data') }, delete: { enabled: true } },
      notifications: { endpoints: [{ name: 'test', url: receiver.url, backoff: '10ms' }] },
    });
    registry = await startRegistry(config, { logger: new Logger(config.log, (l) => lines.push(l)) });
    host = new URL(registry.url).host;
  });

  afterAll(async () => {
    await registry?.close();
    await receiver?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const skopeo = (...args: string[]) => run(SKOPEO, ['--insecure-policy', ...args], { env: { ...process.env, HOME: dir } });

  it('pushes an image verified against the test CA, logs the requests, and sends https event URLs', async () => {
    expect(registry.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    // Without the CA the certificate is refused: verification is real.
    await expect(skopeo('copy', '--dest-creds', AUTH, `oci:${path.join(dir, 'src')}:v1`, `docker://${host}/demo/app:v1`)).rejects.toThrow(/x509|certificate/);

    await skopeo('copy', '--dest-cert-dir', path.join(dir, 'trust'), '--dest-creds', AUTH, `oci:${path.join(dir, 'src')}:v1`, `docker://${host}/demo/app:v1`);
    const { stdout } = await skopeo('inspect', '--cert-dir', path.join(dir, 'trust'), '--creds', AUTH, `docker://${host}/demo/app:v1`);
    expect(JSON.parse(stdout)).toMatchObject({ Digest: img.manifest.digest });

    // The access lines, in logrus' text shape with the configured fields.
    const put = lines.find((l) => l.includes('http.request.method=PUT') && l.includes('http.request.uri=/v2/demo/app/manifests/v1'));
    expect(put).toMatch(/^time="[^"]+" level=info msg="response completed" environment=test .*http\.response\.duration="?\d[^ ]*s"? .*http\.response\.status=201 .*service=registry/);
    expect(lines.some((l) => /level=error msg="response completed with error" .*http\.request\.method=HEAD .*http\.response\.status=404/.test(l))).toBe(true);

    // Events see the TLS connection.
    await receiver.until((r) => r.events.some((e) => e.action === 'push' && e.target.tag === 'v1'));
    const push = receiver.events.find((e) => e.action === 'push' && e.target.tag === 'v1')!;
    expect(push.target.url).toBe(`https://${host}/v2/demo/app/manifests/${img.manifest.digest}`);
    expect(push.actor).toEqual({ name: 'alice' });
  });
});
