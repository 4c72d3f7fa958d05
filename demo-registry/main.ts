// The registry on the command line:  npx tsx demo-registry/main.ts --config FILE
// Runs in the foreground; SIGTERM or SIGINT closes the servers, delivers what the
// notifications pipeline holds (up to its drain timeout) and exits 0. Exit 1 for a bad
// configuration or an address in use, 2 for bad arguments.
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { Registry } from 'prom-client';
import { ConfigError, createNotifications, type Notifications } from '../lib';
import { createRegistryApp, InFlight } from './app';
import { loadHtpasswd } from './auth';
import { loadRegistryConfig, notAppliedWarning, type ListenAddress, type RegistryConfig, type TlsConfig } from './config';
import { createDebugApp } from './debug-server';
import { createFrontApp } from './front';
import { hasHealthChecks, HealthChecks } from './health';
import { DEFAULT_LOG_CONFIG, Logger } from './log';
import { startUploadPurger, type UploadPurger } from './maintenance';
import { opensslCiphers } from './tls-ciphers';
import { FilesystemStorage } from './storage';

/** A registry that is listening. */
export interface RunningRegistry {
  /** Base URL of the API, e.g. `http://127.0.0.1:5000` (`https:` with `http.tls`, the prefix included); with `http.net: unix`, `unix:<path>`. */
  readonly url: string;
  /** Base URL of the debug server, when `http.debug.addr` is set. */
  readonly debugUrl?: string;
  readonly notifications: Notifications;
  readonly storage: FilesystemStorage;
  /** Stops listening, then closes the notifications pipeline. Safe to call twice. */
  close(): Promise<void>;
}

function listen(server: http.Server, addr: ListenAddress | string, scheme = 'http'): Promise<string> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    const ready = () => {
      server.off('error', reject);
      if (typeof addr === 'string') return resolve(`unix:${addr}`);
      const a = server.address() as AddressInfo;
      const host = a.family === 'IPv6' ? `[${a.address === '::' ? '::1' : a.address}]` : a.address === '0.0.0.0' ? '127.0.0.1' : a.address;
      resolve(`${scheme}://${host}:${a.port}`);
    };
    if (typeof addr === 'string') server.listen(addr, ready);
    else server.listen(addr.port, addr.host || undefined, ready);
  });
}

/** A server and every socket it has accepted, HTTP or not yet (a TLS handshake under way). */
interface Listening {
  server: http.Server;
  sockets: Set<Socket>;
  drainMs: number;
}

function track(server: http.Server, drainMs: number): Listening {
  const sockets = new Set<Socket>();
  // `connection` is the TCP socket, before TLS: Node's HTTP connection list misses a client that never finishes its handshake.
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  return { server, sockets, drainMs };
}

/**
 * Stops listening; requests in progress get `drainMs` to finish (`http.draintimeout`),
 * then every connection still open is closed, whatever state it is in (slow uploads,
 * slow readers, TLS handshakes that never finish). Idle keep-alive connections close at once.
 */
function stop({ server, sockets, drainMs }: Listening): Promise<void> {
  return new Promise((resolve) => {
    if (!server.listening) return resolve();
    let timer: NodeJS.Timeout | undefined;
    let sweeper: NodeJS.Timeout | undefined;
    server.close(() => {
      clearTimeout(timer);
      clearInterval(sweeper);
      resolve();
    });
    const closeAll = () => {
      server.closeAllConnections();
      for (const socket of sockets) socket.destroy();
    };
    server.closeIdleConnections();
    if (drainMs > 0) {
      // A keep-alive connection whose request just finished goes idle: close it then, not at the deadline.
      sweeper = setInterval(() => server.closeIdleConnections(), 25);
      timer = setTimeout(closeAll, drainMs);
    } else {
      closeAll();
    }
  });
}

/** On shutdown, longest the handlers of closed connections get to finish (their events are then sent) before the pipeline closes. */
const HANDLERS_DRAIN_MS = 5_000; // 5s

const TLS_VERSIONS = { 'tls1.0': 'TLSv1', 'tls1.1': 'TLSv1.1', 'tls1.2': 'TLSv1.2', 'tls1.3': 'TLSv1.3' } as const;

/** Reads `http.tls`'s files; ConfigError naming the field of one that cannot be read. */
function tlsOptions(tls: TlsConfig): https.ServerOptions {
  const read = (file: string, field: string) => {
    try {
      return readFileSync(file);
    } catch (err) {
      throw new ConfigError(field, `cannot read ${JSON.stringify(file)}: ${(err as Error).message}`);
    }
  };
  return {
    cert: read(tls.certificate, 'http.tls.certificate'),
    key: read(tls.key, 'http.tls.key'),
    minVersion: TLS_VERSIONS[tls.minimumTls],
    ...(opensslCiphers(tls.cipherSuites) ? { ciphers: opensslCiphers(tls.cipherSuites) } : {}),
    ...(tls.clientCas.length > 0
      ? { ca: tls.clientCas.map((f, i) => read(f, `http.tls.clientcas[${i}]`)), requestCert: true, rejectUnauthorized: true }
      : {}),
  };
}

/** How `startRegistry` reports, and time limits that are not Distribution's settings. */
export interface StartOptions {
  /** Where log lines go. @default a Logger for `config.log` writing to stderr */
  logger?: Logger;
  /** Longest a request other than a blob upload may take to arrive (see RegistryAppOptions). @default 300000 (5m) */
  requestTimeoutMs?: number;
  /** Longest a blob upload's body may go without a byte (see RegistryAppOptions). @default 60000 (1m) */
  uploadIdleTimeoutMs?: number;
}

/** Starts the registry (and its debug server) from a parsed configuration. */
export async function startRegistry(config: RegistryConfig, options: StartOptions = {}): Promise<RunningRegistry> {
  const logger = options.logger ?? new Logger(config.log);
  const root = config.storage.driver === 'inmemory' ? await mkdtemp(path.join(os.tmpdir(), 'demo-registry-inmemory-')) : config.storage.rootDirectory!;
  const removeRoot = config.storage.driver === 'inmemory' ? () => rm(root, { recursive: true, force: true }) : async () => undefined;
  const storage = new FilesystemStorage(root);
  await storage.init();
  // Event URLs as Distribution builds them: http.host (else each request's host), the
  // prefix, or paths alone with http.relativeurls.
  const notifications = createNotifications(config.notifications, {
    ...(config.http.host ? { baseUrl: config.http.host } : {}),
    relativeUrls: config.http.relativeUrls,
    pathPrefix: config.http.prefix,
    metricsRegistry: new Registry(),
  });
  const servers: Listening[] = [];
  let purger: UploadPurger | undefined;
  const health = hasHealthChecks(config.health) ? HealthChecks.fromConfig(config.health, storage.root, config.storage.driver) : undefined;
  const inFlight = new InFlight();
  // Delivery goes on while requests drain. The pipeline closes (delivering for up to its own
  // drain timeout) once the servers are closed and the handlers they were running are done,
  // so the events of requests that finish in the drain are kept.
  const release = async () => {
    health?.stop();
    await Promise.all(servers.map(stop));
    if (!(await inFlight.idle(HANDLERS_DRAIN_MS))) logger.warn(`closing with ${inFlight.size} request(s) still being handled; their events may be lost`);
    await Promise.all([purger?.stop(), notifications.close()]);
    await removeRoot();
  };
  try {
    await notifications.ready();
    const registryApp = createRegistryApp({
      storage,
      notifications,
      deleteEnabled: config.storage.deleteEnabled,
      readOnly: config.storage.readOnly,
      maxCatalogEntries: config.catalog.maxEntries,
      inFlight,
      ...(options.requestTimeoutMs !== undefined ? { requestTimeoutMs: options.requestTimeoutMs } : {}),
      ...(options.uploadIdleTimeoutMs !== undefined ? { uploadIdleTimeoutMs: options.uploadIdleTimeoutMs } : {}),
      onInternalError: (err: Error) => logger.error(`internal error: ${err.stack ?? err.message}`),
      ...(config.auth ? { auth: { ...config.auth.htpasswd, onError: (err: Error) => logger.error(`error checking authorization: ${err.message}`) } } : {}),
    });
    if (config.auth) {
      // Read at requests, as Distribution does; a file that is not usable yet is only worth a warning now.
      try {
        loadHtpasswd(config.auth.htpasswd.path);
      } catch (err) {
        logger.warn(`${(err as Error).message}; requests with credentials are answered 400 until it can be read`);
      }
    }
    const app = createFrontApp(registryApp, {
      headers: config.http.headers,
      ...(config.http.prefix ? { prefix: config.http.prefix } : {}),
      ...(config.log.distribution && config.log.accessLog ? { accessLogger: logger } : {}),
      ...(health ? { health: health.middleware() } : {}),
      onInternalError: (err: Error) => logger.error(`internal error: ${err.stack ?? err.message}`),
    });
    const server = config.http.tls ? https.createServer(tlsOptions(config.http.tls), app) : http.createServer(app);
    // The app limits the time a request takes to arrive, except for blob uploads (see RegistryAppOptions).
    server.requestTimeout = 0;
    servers.push(track(server, config.http.drainTimeoutMs));
    const url = (await listen(server, config.http.socketPath ?? config.http.addr, config.http.tls ? 'https' : 'http')) + (config.http.prefix ?? '');
    let debugUrl: string | undefined;
    if (config.http.debugAddr) {
      const debug = http.createServer(
        createDebugApp(notifications, {
          ...(config.http.prometheusPath ? { prometheusPath: config.http.prometheusPath } : {}),
          ...(config.http.debugAuth ? { auth: config.http.debugAuth } : {}),
          ...(health ? { health: health.handler() } : {}),
          onInternalError: (err: Error) => logger.error(`debug server: internal error: ${err.stack ?? err.message}`),
        }),
      );
      servers.push(track(debug, 0));
      debugUrl = await listen(debug, config.http.debugAddr);
    }
    health?.start();
    if (config.storage.uploadPurging.enabled && !config.storage.readOnly) {
      purger = startUploadPurger(storage.root, config.storage.uploadPurging, logger, { inUse: (name, id) => storage.uploadInUse(name, id) });
    }
    let closing: Promise<void> | undefined;
    return {
      url,
      ...(debugUrl ? { debugUrl } : {}),
      notifications,
      storage,
      close: () => (closing ??= release()),
    };
  } catch (err) {
    await release();
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

/**
 * Runs until SIGTERM or SIGINT; resolves with the exit code once shut down. `env` holds
 * the `REGISTRY_<PATH>` overrides of the file's fields (process.env when run as a program).
 */
export async function main(argv: readonly string[], env: Record<string, string | undefined> = {}): Promise<number> {
  // Until the configuration is read, lines go out in the demo's short form.
  const early = new Logger(DEFAULT_LOG_CONFIG);
  let file: string;
  try {
    file = parseMainArgs(argv).config;
  } catch (err) {
    early.error(`${(err as Error).message}\n${USAGE}`);
    return 2;
  }
  let config: RegistryConfig;
  let registry: RunningRegistry;
  let log = early;
  try {
    config = loadRegistryConfig(file, env);
    log = new Logger(config.log);
    const warning = notAppliedWarning(config);
    if (warning) log.warn(warning);
    registry = await startRegistry(config, { logger: log });
  } catch (err) {
    const prefix = err instanceof ConfigError ? `invalid configuration ${file}: ` : 'cannot start: ';
    log.error(`${prefix}${(err as Error).message}`);
    return 1;
  }
  log.info(`listening on ${registry.url}${registry.debugUrl ? `, debug on ${registry.debugUrl}` : ''}`);
  const signal = await new Promise<string>((resolve) => {
    process.once('SIGTERM', () => resolve('SIGTERM'));
    process.once('SIGINT', () => resolve('SIGINT'));
  });
  log.info(`${signal}: closing`);
  await registry.close();
  log.info('closed');
  return 0;
}

if (require.main === module) {
  void main(process.argv.slice(2), process.env).then((code) => process.exit(code));
}
