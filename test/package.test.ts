import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import path from 'node:path';

// Packs the library as `npm pack` would publish it and loads it both ways a user would.
const root = path.resolve(__dirname, '..');

describe('the published package', () => {
  let consumer: string;
  beforeAll(() => {
    // Inside node_modules/, so the packed code finds its dependencies as it would when installed.
    mkdirSync(path.join(root, 'node_modules', '.cache'), { recursive: true });
    consumer = mkdtempSync(path.join(root, 'node_modules', '.cache', 'pack-'));
    execFileSync('npm', ['pack', '--silent', '--pack-destination', consumer], { cwd: root, stdio: 'pipe' });
    const tarball = readdirSync(consumer).find((f) => f.endsWith('.tgz'))!;
    const into = path.join(consumer, 'node_modules', 'registry-notifications');
    mkdirSync(into, { recursive: true });
    execFileSync('tar', ['-xzf', path.join(consumer, tarball), '-C', into, '--strip-components', '1']);
  }, 120_000);
  afterAll(() => rmSync(consumer, { recursive: true, force: true }));

  it('ships compiled JavaScript and type declarations, not the TypeScript sources', () => {
    const files = readdirSync(path.join(consumer, 'node_modules', 'registry-notifications', 'dist'));
    expect(files).toEqual(expect.arrayContaining(['index.js', 'index.mjs', 'index.d.ts', 'index.d.mts', 'notifications.js', 'notifications.d.ts']));
    expect(files.filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts') && !f.endsWith('.d.mts'))).toEqual([]);
  });

  it('works from require', () => {
    const out = execFileSync('node', ['-e', "const n = require('registry-notifications'); console.log(typeof n.createNotifications, n.EVENTS_MEDIA_TYPE_V1)"], { cwd: consumer }).toString();
    expect(out.trim()).toBe('function application/vnd.docker.distribution.events.v1+json');
  });

  it('works from import, with the same named exports', () => {
    const script = "import { createNotifications, encodeEnvelope } from 'registry-notifications'; import * as all from 'registry-notifications'; console.log(typeof createNotifications, typeof encodeEnvelope, Object.keys(all).length > 40)";
    const out = execFileSync('node', ['--input-type=module', '-e', script], { cwd: consumer }).toString();
    expect(out.trim()).toBe('function function true');
  });
});
