// http.tls beyond the certificate: client certificates (clientcas) and minimumtls.
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { parseRegistryConfig } from '../../demo-registry/config';
import { Logger } from '../../demo-registry/log';
import { startRegistry, type RunningRegistry } from '../../demo-registry/main';
import { makeCertificates, OPENSSL } from './certificates';

const hasOpenssl = existsSync(OPENSSL);
if (!hasOpenssl && !process.env.CI) console.warn(`\n*** tls.test.ts SKIPPED: ${OPENSSL} is not installed ***\n`);

(hasOpenssl || process.env.CI ? describe : describe.skip)('http.tls', () => {
  let dir: string;
  let certs: ReturnType<typeof makeCertificates>;
  const running: RunningRegistry[] = [];
  beforeAll(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'demo-registry-tls-opts-'));
    certs = makeCertificates(dir);
  });
  afterEach(async () => {
    await Promise.all(running.splice(0).map((r) => r.close()));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  async function start(tls: Record<string, unknown>): Promise<RunningRegistry> {
    const config = parseRegistryConfig({
      version: '0.1',
      http: { addr: '127.0.0.1:0', tls: { certificate: certs.cert, key: certs.key, ...tls } },
      storage: { filesystem: { rootdirectory: path.join(dir, `data-${running.length}`) } },
    });
    const registry = await startRegistry(config, { logger: new Logger(config.log, () => undefined) });
    running.push(registry);
    return registry;
  }

  /** GET /v2/ over HTTPS trusting the test CA; resolves with the status or the error's code. */
  function get(url: string, options: https.RequestOptions = {}): Promise<number | string> {
    return new Promise((resolve) => {
      const req = https.get(`${url}/v2/`, { ca: readFileSync(certs.caCert), agent: false, ...options }, (res) => {
        res.resume();
        resolve(res.statusCode!);
      });
      req.on('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
    });
  }

  it('with clientcas, serves only clients presenting a certificate one of them signed', async () => {
    const registry = await start({ clientcas: [certs.caCert] });
    expect(await get(registry.url, { cert: readFileSync(certs.clientCert), key: readFileSync(certs.clientKey) })).toBe(200);
    expect(await get(registry.url)).not.toBe(200);
    // A certificate the CA did not sign: the server's own self-made one will not do either.
    expect(await get(registry.url, { cert: readFileSync(certs.caCert), key: readFileSync(path.join(dir, 'ca.key')) })).not.toBe(200);
  });

  it('refuses clients below minimumtls', async () => {
    const registry = await start({ minimumtls: 'tls1.3' });
    expect(await get(registry.url, { maxVersion: 'TLSv1.2' })).not.toBe(200);
    expect(await get(registry.url, { minVersion: 'TLSv1.3' })).toBe(200);
  });

  it('offers only the ciphersuites given, for TLS 1.2', async () => {
    const registry = await start({ ciphersuites: ['TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384'] });
    const tls12 = { maxVersion: 'TLSv1.2' as const };
    expect(await get(registry.url, { ...tls12, ciphers: 'ECDHE-RSA-AES256-GCM-SHA384' })).toBe(200);
    expect(await get(registry.url, { ...tls12, ciphers: 'ECDHE-RSA-AES128-GCM-SHA256' })).not.toBe(200);
    expect(await get(registry.url, { minVersion: 'TLSv1.3' })).toBe(200);
  });

  it('fails to start naming the field of a file it cannot read', async () => {
    const config = parseRegistryConfig({
      version: '0.1',
      http: { addr: '127.0.0.1:0', tls: { certificate: path.join(dir, 'missing.crt'), key: certs.key } },
      storage: { filesystem: { rootdirectory: path.join(dir, 'never') } },
    });
    await expect(startRegistry(config, { logger: new Logger(config.log, () => undefined) })).rejects.toThrow(/^http\.tls\.certificate: cannot read ".*missing\.crt"/);
  });
});
