// The registry on the command line:  npx tsx demo-registry/main.ts --config FILE
// Runs in the foreground; SIGTERM or SIGINT closes the servers, delivers what the
// notifications pipeline holds (up to its drain timeout) and exits 0. Exit 1 for a bad
// configuration or an address in use, 2 for bad arguments.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { parseArgs } from 'node:util';
import { Registry } from 'prom-client';
import { ConfigError, createNotifications, type Notifications } from '../lib';
import { createRegistryApp } from './app';
import { loadRegistryConfig, type ListenAddress, type RegistryConfig } from './config';
import { createDebugApp } from './debug-server';
import { FilesystemStorage } from './storage';

/** A registry that is listening. */
export interface RunningRegistry {
  /** Base URL of the API, e.g. `http://127.0.0.1:5000`. */
  readonly url: string;
  /** Base URL of the debug server, when `http.debug.addr` is set. */
  readonly debugUrl?: string;
  readonly notifications: Notifications;
  readonly storage: FilesystemStorage;
  /** Stops listening, then closes the notifications pipeline. Safe to call twice. */
  close(): Promise<void>;
}

function listen(server: http.Server, addr: ListenAddress): Promise<string> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(addr.port, addr.host || undefined, () => {
      server.off('error', reject);
      const a = server.address() as AddressInfo;
      const host = a.family === 'IPv6' ? `[${a.address === '::' ? '::1' : a.address}]` : a.address === '0.0.0.0' ? '127.0.0.1' : a.address;
      resolve(`http://${host}:${a.port}`);
    });
  });
}

function stop(server: http.Server): Promise<void> {
  return new Promise((resolve) => {
    if (!server.listening) return resolve();
    server.close(() => resolve());
    server.closeIdleConnections();
  });
}

/** Starts the registry (and its debug server) from a parsed configuration. */
export async function startRegistry(config: RegistryConfig): Promise<RunningRegistry> {
  const storage = new FilesystemStorage(config.storage.rootDirectory);
  await storage.init();
  const notifications = createNotifications(config.notifications, {
    ...(config.http.host ? { baseUrl: config.http.host } : {}),
    metricsRegistry: new Registry(),
  });
  const servers: http.Server[] = [];
  try {
    await notifications.ready();
    const app = createRegistryApp({
      storage,
      notifications,
      deleteEnabled: config.storage.deleteEnabled,
      ...(config.auth ? { auth: config.auth.htpasswd } : {}),
    });
    const server = http.createServer(app);
    servers.push(server);
    const url = await listen(server, config.http.addr);
    let debugUrl: string | undefined;
    if (config.http.debugAddr) {
      const debug = http.createServer(createDebugApp(notifications));
      servers.push(debug);
      debugUrl = await listen(debug, config.http.debugAddr);
    }
    let closing: Promise<void> | undefined;
    return {
      url,
      ...(debugUrl ? { debugUrl } : {}),
      notifications,
      storage,
      close: () =>
        (closing ??= (async () => {
          await Promise.all(servers.map(stop));
          await notifications.close();
        })()),
    };
  } catch (err) {
    await Promise.all(servers.map(stop));
    await notifications.close();
    throw err;
  }
}

export const USAGE = 'usage: demo-registry --config FILE';

/** The `--config` file from the command line (without node and the script). */
export function parseMainArgs(argv: readonly string[]): { config: string } {
  const { values } = parseArgs({ args: [...argv], options: { config: { type: 'string', short: 'c' } }, strict: true, allowPositionals: false });
  if (!values.config) throw new Error('missing --config FILE: the registry configuration (config.yml)');
  return { config: values.config };
}

/** Runs until SIGTERM or SIGINT; resolves with the exit code once shut down. */
export async function main(argv: readonly string[]): Promise<number> {
  const log = (line: string) => process.stderr.write(line + '\n');
  let file: string;
  try {
    file = parseMainArgs(argv).config;
  } catch (err) {
    log(`demo-registry: ${(err as Error).message}\n${USAGE}`);
    return 2;
  }
  let registry: RunningRegistry;
  try {
    registry = await startRegistry(loadRegistryConfig(file));
  } catch (err) {
    const prefix = err instanceof ConfigError ? `invalid configuration ${file}: ` : 'cannot start: ';
    log(`demo-registry: ${prefix}${(err as Error).message}`);
    return 1;
  }
  log(`demo-registry: listening on ${registry.url}${registry.debugUrl ? `, debug on ${registry.debugUrl}` : ''}`);
  const signal = await new Promise<string>((resolve) => {
    process.once('SIGTERM', () => resolve('SIGTERM'));
    process.once('SIGINT', () => resolve('SIGINT'));
  });
  log(`demo-registry: ${signal}: closing`);
  await registry.close();
  log('demo-registry: closed');
  return 0;
}

if (require.main === module) {
  void main(process.argv.slice(2)).then((code) => process.exit(code));
}
