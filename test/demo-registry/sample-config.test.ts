// A Distribution operator's drop-in: Debian's own config.yml for docker-registry starts the
// demo from the command line with only its root directory and address changed.
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { spawnTs } from '../helpers/registry-process';

const DEBIAN_SAMPLE = '/etc/docker/registry/config.yml';
const present = existsSync(DEBIAN_SAMPLE);

if (!present && !process.env.CI) {
  console.warn(`\n*** sample-config.test.ts SKIPPED: ${DEBIAN_SAMPLE} (Debian's docker-registry) is not installed ***\n`);
}

describe("Debian's sample config is there", () => {
  (process.env.CI ? it : it.skip)('in CI', () => {
    expect(present).toBe(true);
  });
});

/** Runs `demo-registry/main.ts --config file`, collecting stderr lines; resolves once it says where it listens. */
async function runMain(file: string, env: NodeJS.ProcessEnv) {
  const child = spawnTs('demo-registry/main.ts', ['--config', file], { stdio: ['ignore', 'ignore', 'pipe'], env });
  const lines: string[] = [];
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const url = await new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stderr! }).on('line', (line) => {
      lines.push(line);
      const m = line.match(/msg="listening on (http:\/\/[^"\s,]+)/);
      if (m) resolve(m[1]);
    });
    child.once('exit', (code) => reject(new Error(`exited with ${code} before listening:\n${lines.join('\n')}`)));
  });
  return { child, lines, url, exited };
}

(present ? describe : describe.skip)("Debian's /etc/docker/registry/config.yml", () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'demo-registry-sample-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('starts the demo unchanged but for rootdirectory and addr, and GET /v2/ answers as docker-registry 2.8.2 does', async () => {
    const original = readFileSync(DEBIAN_SAMPLE, 'utf8');
    const rewritten = original
      .replace(/^(\s+rootdirectory:).*$/m, `$1 ${path.join(dir, 'data')}`)
      .replace(/^(\s+addr:) :5000$/m, '$1 127.0.0.1:0');
    expect(rewritten).not.toBe(original);
    // Only those two lines differ.
    const changed = rewritten.split('\n').filter((line, i) => line !== original.split('\n')[i]);
    expect(changed).toEqual([`    rootdirectory: ${path.join(dir, 'data')}`, '  addr: 127.0.0.1:0']);
    const file = path.join(dir, 'config.yml');
    writeFileSync(file, rewritten);

    // main passes its environment on: REGISTRY_* variables override the file (here, one more log field).
    const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('REGISTRY_')));
    const proc = await runMain(file, { ...env, REGISTRY_LOG_FIELDS_ENVIRONMENT: 'staging' });
    try {
      // Everything in it applies here (no "accepted, not applied" warning); the one warning is
      // about the htpasswd path, a directory. Every line carries log.fields.
      expect(proc.lines.filter((l) => l.includes('level=warning'))).toEqual([
        expect.stringMatching(/^time="[^"]+" level=warning msg="auth\.htpasswd\.path: cannot read htpasswd file \\"\/etc\/docker\/registry\\": .*" environment=staging service=registry$/),
      ]);
      expect(proc.lines.every((l) => / environment=staging .*service=registry( |$)/.test(l))).toBe(true);

      // The sample's htpasswd path is a directory: as with docker-registry, a challenge without
      // credentials, and 400 with them; http.headers on both.
      const anonymous = await fetch(`${proc.url}/v2/`);
      expect(anonymous.status).toBe(401);
      expect(anonymous.headers.get('www-authenticate')).toBe('Basic realm="basic-realm"');
      expect(anonymous.headers.get('x-content-type-options')).toBe('nosniff');
      expect(anonymous.headers.get('docker-distribution-api-version')).toBe('registry/2.0');
      expect(((await anonymous.json()) as { errors: Array<{ code: string }> }).errors[0].code).toBe('UNAUTHORIZED');
      const withCredentials = await fetch(`${proc.url}/v2/`, { headers: { Authorization: 'Basic ' + Buffer.from('a:b').toString('base64') } });
      expect(withCredentials.status).toBe(400);
      expect(withCredentials.headers.get('x-content-type-options')).toBe('nosniff');
    } finally {
      proc.child.kill('SIGTERM');
    }
    expect(await proc.exited).toBe(0);
    expect(proc.lines.some((l) => l.includes('msg="error checking authorization: auth.htpasswd.path: cannot read htpasswd file'))).toBe(true);
    expect(proc.lines.some((l) => l.includes('msg="SIGTERM: closing"'))).toBe(true);
  });
});
