// `npm start`: the demo registry (demo-registry/config.yml, 127.0.0.1:5000) with the bundled
// webhook receiver (lib/bin/receiver.ts, 127.0.0.1:5001) as a child printing each event.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import bcrypt from 'bcryptjs';
import { loadRegistryConfig, notAppliedWarning, type RegistryConfig } from './config';
import { startRegistry } from './main';
import { tinyImage, writeOciLayout } from './sample-image';

const ROOT = path.resolve(__dirname, '..');
const CONFIG = path.join(__dirname, 'config.yml');
const DEMO_USER = { name: 'alice', password: 'pw' };
const RECEIVER_PORT = 5001;
/** A small image to push without reaching any other registry: `oci:.demo-data/sample:v1`. */
const SAMPLE = '.demo-data/sample';

/** The bearer token the config sends to the receiver endpoint, so both sides agree. */
function receiverToken(config: RegistryConfig): string {
  const endpoint = config.notifications.endpoints.find((e) => new URL(e.url).port === String(RECEIVER_PORT));
  const auth = endpoint?.headers.Authorization?.[0] ?? '';
  const m = auth.match(/^Bearer\s+(\S+)$/);
  if (!m) throw new Error(`${CONFIG}: expected an endpoint to 127.0.0.1:${RECEIVER_PORT} with "Authorization: [Bearer <token>]"`);
  return m[1];
}

/** Writes the demo htpasswd file (bcrypt, `$2y$` as `htpasswd -B` does) when missing. */
function ensureHtpasswd(file: string): void {
  if (existsSync(file)) return;
  mkdirSync(path.dirname(file), { recursive: true });
  const hash = bcrypt.hashSync(DEMO_USER.password, 5).replace(/^\$2[ab]\$/, '$2y$');
  writeFileSync(file, `${DEMO_USER.name}:${hash}\n`, { mode: 0o600 });
}

async function run(): Promise<void> {
  process.chdir(ROOT);
  const config = loadRegistryConfig(CONFIG, process.env);
  const warning = notAppliedWarning(config);
  if (warning) console.error(`start: ${warning}`);
  if (config.auth) ensureHtpasswd(config.auth.htpasswd.path);
  if (!existsSync(path.join(SAMPLE, 'index.json'))) {
    await writeOciLayout(SAMPLE, [{ tag: 'v1', image: tinyImage({ layers: [{ 'hello.txt': 'hello from the demo registry\n' }] }) }]);
  }
  const tsx = path.join(ROOT, 'node_modules', '.bin', 'tsx');
  const receiver: ChildProcess = spawn(tsx, ['lib/bin/receiver.ts', '--port', String(RECEIVER_PORT), '--token', receiverToken(config)], {
    stdio: ['ignore', 'inherit', 'inherit'],
    // Its own process group: Ctrl-C reaches only us, so the receiver outlives the registry's drain.
    detached: true,
  });
  process.on('exit', () => receiver.kill('SIGTERM'));
  let stopping = false;
  receiver.on('exit', (code, signal) => {
    if (!stopping) console.error(`start: the receiver exited (${signal ?? `code ${code}`}); events will queue until it is back`);
  });

  let registry: Awaited<ReturnType<typeof startRegistry>>;
  try {
    registry = await startRegistry(config);
  } catch (err) {
    stopping = true;
    receiver.kill('SIGTERM');
    throw err;
  }
  const host = new URL(registry.url).host;
  console.error(
    [
      `registry on ${registry.url} (user ${DEMO_USER.name}, password ${DEMO_USER.password}), receiver on http://127.0.0.1:${RECEIVER_PORT}/`,
      registry.debugUrl ? `console: ${registry.debugUrl}/debug/notifications · stats: ${registry.debugUrl}/debug/vars, ${registry.debugUrl}/metrics · feed: ${registry.debugUrl}/events` : '',
      'push an image, and watch the events below:',
      `  skopeo copy --dest-tls-verify=false --dest-creds ${DEMO_USER.name}:${DEMO_USER.password} oci:${SAMPLE}:v1 docker://${host}/demo/app:v1`,
      'Ctrl-C stops both.',
    ]
      .filter(Boolean)
      .join('\n'),
  );

  const shutdown = async () => {
    if (stopping) return;
    stopping = true;
    await registry.close();
    if (receiver.exitCode === null && receiver.signalCode === null) {
      const exited = new Promise((resolve) => receiver.once('exit', resolve));
      receiver.kill('SIGTERM');
      await exited;
    }
    process.exit(0);
  };
  process.once('SIGINT', () => void shutdown());
  process.once('SIGTERM', () => void shutdown());
}

run().catch((err: Error) => {
  console.error(`start: ${err.message}`);
  process.exit(1);
});
