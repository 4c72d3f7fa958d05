import os from 'node:os';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import { Registry } from 'prom-client';
import { v4 as uuidv4 } from 'uuid';
import { Bridge, urlBuilderFor, type RepositoryListener } from './emit/bridge';
import { Broadcaster } from './deliver/broadcaster';
import { parseNotificationsConfig, type NotificationsConfig } from './config/load';
import type { ActorRecord, SourceRecord } from './model/event';
import { Endpoint } from './deliver/endpoint';
import { listenRepository } from './emit/listener';
import { NotificationMetrics } from './inspect/metrics';
import type { Repository } from './emit/repository';
import { defaultActor, requestBaseUrl, requestRecord } from './emit/request-record';
import type { Sink } from './deliver/sink';
import { EndpointStats, type EndpointCounters } from './inspect/endpoint-stats';
import { createEndpointStores } from './stores/create-stores';
import { RequestTransaction } from './emit/held-events';

export interface NotificationsOptions {
  /**
   * Base URL of event URLs, Distribution's `http.host` (e.g. `https://registry.example.com`).
   * @default derived from each request (Forwarded, X-Forwarded-Proto/Host, Host)
   */
  baseUrl?: string;
  /** `source.addr`: this registry's `hostname:port`. @default os.hostname() + the port the request came in on */
  sourceAddr?: string;
  /** Who caused a request's events. @default `defaultActor`: req.user, else the Basic-auth user, else `{}` */
  actor?(req: Request): ActorRecord;
  /** The Prometheus registry metrics go to; never the global one. @default a new Registry */
  metricsRegistry?: Registry;
  /**
   * Write events as soon as the operation succeeds, as Distribution does, instead of
   * holding them until the response succeeds. @default false
   */
  emitImmediately?: boolean;
  /** `source.instanceID`. @default a new uuid per process */
  instanceId?: string;
  /** Where notification problems go; they never fail a request. @default console.error */
  onError?(err: Error, context: string): void;
}

/** One endpoint in the shape of Distribution's `registry.notifications.endpoints` expvar. */
export interface EndpointVars {
  name: string;
  url: string;
  Headers: Record<string, string[]>;
  /** Nanoseconds, as Go's time.Duration marshals. */
  Timeout: number;
  Threshold: number;
  Backoff: number;
  IgnoredMediaTypes: string[];
  Ignore: { MediaTypes: string[]; Actions: string[] };
  Metrics: EndpointCounters;
}

/** What `createNotifications` returns: the middleware and a handle on the pipeline. */
export interface Notifications {
  /** Mount with `app.use()` before the registry's routes. */
  readonly middleware: RequestHandler;
  /** This request's repository, decorated so that operations that succeed emit events. */
  repository<R extends Repository>(req: Request, repo: R): R;
  /** This request's bridge, to report operations by hand. */
  bridge(req: Request): RepositoryListener;
  readonly endpoints: readonly Endpoint[];
  readonly config: NotificationsConfig;
  readonly metricsRegistry: Registry;
  readonly source: SourceRecord;
  /** Per-endpoint stats in Distribution's expvar shape. */
  debugVars(): EndpointVars[];
  /** The endpoint of this name; throws naming the endpoints there are. */
  endpoint(name: string): Endpoint;
  /** Resolves once every store is reachable and the backlog counted; rejects naming the store otherwise. */
  ready(): Promise<void>;
  /** Stops taking events, delivers for up to the drain timeout, and releases everything. */
  close(): Promise<void>;
}

const contexts = new WeakMap<IncomingMessage, Bridge>();

/**
 * Builds the notification pipeline from a `notifications:` configuration (as parsed
 * YAML or from `parseNotificationsConfig`) and returns its Express middleware.
 */
export function createNotifications(config: unknown, options: NotificationsOptions = {}): Notifications {
  const parsed = parseNotificationsConfig(config);
  const onError = options.onError ?? ((err: Error, context: string) => console.error(`notifications: ${context}: ${err.message}`));
  const metricsRegistry = options.metricsRegistry ?? new Registry();
  const metrics = new NotificationMetrics(metricsRegistry);
  const instanceId = options.instanceId ?? uuidv4();
  const source: SourceRecord = { instanceID: instanceId };
  if (options.sourceAddr) source.addr = options.sourceAddr;

  const endpoints = parsed.endpoints
    .filter((e) => !e.disabled)
    .map((e) => {
      const stores = createEndpointStores(parsed.queue, e.name, instanceId, (err) => onError(err, `endpoint ${e.name}: store`));
      return new Endpoint(e, {
        store: stores.queue,
        deadLetters: stores.deadLetters,
        stats: new EndpointStats(e.name, metrics),
        drainTimeoutMs: parsed.queue.drainTimeoutMs,
        onError: (err) => onError(err, `endpoint ${e.name}`),
      });
    });
  const broadcaster: Sink = new Broadcaster(endpoints, {
    onError: (err, i) => onError(err, `endpoint ${endpoints[i].name}`),
  });
  const fixedUrls = options.baseUrl ? urlBuilderFor(options.baseUrl) : undefined;
  const resolveActor = options.actor ?? defaultActor;

  const middleware: RequestHandler = (req: Request, res: Response, next: NextFunction) => {
    if (source.addr === undefined) source.addr = `${os.hostname()}:${req.socket.localPort}`;
    let sink: Sink = broadcaster;
    if (!options.emitImmediately) {
      const tx = new RequestTransaction(broadcaster, (err) => onError(err, `${req.method} ${req.originalUrl}`));
      holdUntilOutcome(res, tx, parsed.queue.commitTimeoutMs);
      sink = tx;
    }
    contexts.set(
      req,
      new Bridge({
        sink,
        urls: fixedUrls ?? urlBuilderFor(requestBaseUrl(req)),
        source,
        actor: resolveActor(req),
        request: requestRecord(req),
        includeReferences: parsed.includeReferences,
      }),
    );
    next();
  };

  const bridgeOf = (req: Request): Bridge => {
    const bridge = contexts.get(req);
    if (!bridge) throw new Error('notifications: the middleware is not mounted before this route (app.use(notifications.middleware))');
    return bridge;
  };

  let closed: Promise<void> | undefined;
  return {
    middleware,
    repository: (req, repo) => listenRepository(repo, bridgeOf(req), (err, op) => onError(err, op)),
    bridge: bridgeOf,
    endpoints,
    config: parsed,
    metricsRegistry,
    source,
    endpoint: (name) => {
      const found = endpoints.find((e) => e.name === name);
      if (!found) throw new RangeError(`no endpoint named ${JSON.stringify(name)}; endpoints: ${endpoints.map((e) => e.name).join(', ') || 'none'}`);
      return found;
    },
    debugVars: () =>
      endpoints.map((e) => ({
        name: e.name,
        url: e.url,
        Headers: redactHeaders(e.config.headers),
        Timeout: e.config.timeoutMs * 1e6,
        Threshold: e.config.threshold,
        Backoff: e.config.backoffMs * 1e6,
        IgnoredMediaTypes: e.config.ignoredMediaTypes,
        Ignore: { MediaTypes: e.config.ignore.mediaTypes, Actions: e.config.ignore.actions },
        Metrics: e.stats.snapshot(),
      })),
    ready: async () => {
      await Promise.all(endpoints.map((e) => e.start()));
    },
    close: () => (closed ??= broadcaster.close()),
  };
}

/**
 * Commits the request's events when its response starts with a success status, and drops
 * them on an error status or an aborted request. The response's end waits until the
 * store holds the events (at most `commitTimeoutMs`), so a client that saw a complete
 * success response knows its events survive a crash of this process.
 */
function holdUntilOutcome(res: ServerResponse, tx: RequestTransaction, commitTimeoutMs: number): void {
  let committing: Promise<void> | undefined;
  const decide = (status: number) => {
    if (status >= 200 && status < 400) committing = tx.commit() ?? committing;
    else tx.rollback();
  };
  const writeHead = res.writeHead;
  res.writeHead = function (this: ServerResponse, ...args: unknown[]) {
    decide(typeof args[0] === 'number' ? args[0] : res.statusCode);
    return (writeHead as (...a: unknown[]) => ServerResponse).apply(this, args);
  } as typeof res.writeHead;
  const end = res.end;
  res.end = function (this: ServerResponse, ...args: unknown[]) {
    // end() without an explicit writeHead sends the status set so far.
    if (!res.headersSent) decide(res.statusCode);
    const pending = committing;
    if (!pending) return (end as (...a: unknown[]) => ServerResponse).apply(this, args);
    committing = undefined;
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<void>((resolve) => (timer = setTimeout(resolve, commitTimeoutMs)));
    void Promise.race([pending, late]).then(() => {
      clearTimeout(timer);
      (end as (...a: unknown[]) => ServerResponse).apply(this, args);
    });
    return this;
  } as typeof res.end;
  res.on('close', () => tx.rollback());
}

/** Headers as `/debug/vars` shows them: credentials are not for a stats page. */
function redactHeaders(headers: Record<string, string[]>): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const [name, values] of Object.entries(headers)) {
    out[name] = /^(authorization|proxy-authorization|cookie|x-api-key)$/i.test(name) ? values.map(() => '<redacted>') : values;
  }
  return out;
}
