import type { Request, RequestHandler } from 'express';
import { Registry } from 'prom-client';
import { v4 as uuidv4 } from 'uuid';
import { Bridge, urlBuilderFor, type RepositoryListener } from './emit/bridge';
import { createEmitter } from './emit/middleware';
import { Broadcaster } from './deliver/broadcaster';
import { parseNotificationsConfig } from './config/load';
import type { NotificationsConfig } from './config/normalize';
import type { ActorRecord, SourceRecord } from './model/event';
import { Endpoint } from './deliver/endpoint';
import { listenRepository } from './emit/listener';
import { NotificationMetrics } from './inspect/metrics';
import type { Repository } from './emit/repository';
import type { Sink } from './deliver/sink';
import { EndpointStats } from './inspect/endpoint-stats';
import { endpointVars, type EndpointVars } from './inspect/debug-vars';

export type { EndpointVars };
import { createDeliveryLog, createEndpointStores } from './stores/create-stores';
import { DeliveryRecorder } from './inspect/delivery-recorder';
import { EventFeed } from './inspect/event-feed';

export interface NotificationsOptions {
  /**
   * Base URL of event URLs, Distribution's `http.host` (e.g. `https://registry.example.com`).
   * @default derived from each request (Forwarded, X-Forwarded-Proto/Host, Host)
   */
  baseUrl?: string;
  /**
   * Event URLs as paths (`/v2/<name>/manifests/<digest>`), without scheme or host,
   * whatever `baseUrl` says: Distribution's `http.relativeurls`. @default false
   */
  relativeUrls?: boolean;
  /** The path the registry's API is served under, Distribution's `http.prefix`; event URLs include it. @default none */
  pathPrefix?: string;
  /** `source.addr`: this registry's `hostname:port`. @default os.hostname() + the port the request came in on */
  sourceAddr?: string;
  /** Who caused a request's events. @default the user authentication put on the request (`req.user`, `res.locals.user`), else `{}` */
  actor?(req: Request): ActorRecord;
  /**
   * With no user set by authentication, take the user name of the request's Basic
   * `Authorization` header, unverified. Only for apps behind a proxy that checked it.
   * @default false
   */
  actorFromBasicAuth?: boolean;
  /**
   * Build event URLs from `Forwarded` / `X-Forwarded-Proto` / `X-Forwarded-Host` when no
   * `baseUrl` is set. @default Express's `trust proxy` setting (off unless the app sets it)
   */
  trustProxy?: boolean;
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
  /** The attempt and event logs of every endpoint (`notifications.log`), as the console reads them. */
  readonly deliveryLog: DeliveryRecorder;
  /** The pull feed of every event emitted (`GET /events`), when `notifications.feed.enabled`. */
  readonly feed?: EventFeed;
  /** Per-endpoint stats in Distribution's expvar shape. */
  debugVars(): EndpointVars[];
  /** The endpoint of this name; throws naming the endpoints there are. */
  endpoint(name: string): Endpoint;
  /** Resolves once every store is reachable and the backlog counted; rejects naming the store otherwise. */
  ready(): Promise<void>;
  /** Stops taking events, delivers for up to the drain timeout, and releases everything. */
  close(): Promise<void>;
}

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

  const deliveryLog = new DeliveryRecorder(createDeliveryLog(parsed.queue, parsed.log), {
    attempts: parsed.log.attempts > 0,
    events: parsed.log.events > 0,
    onError: (err) => onError(err, 'delivery log'),
  });
  const endpoints = parsed.endpoints
    .filter((e) => !e.disabled)
    .map((e) => {
      // GitLab's per-endpoint queuesizelimit and queuepurgetimeout take the place of the queue's.
      const queue = { ...parsed.queue, limit: e.queueSizeLimit ?? parsed.queue.limit };
      const stats = new EndpointStats(e.name, metrics, { recorder: deliveryLog });
      const stores = createEndpointStores(queue, e.name, instanceId, (err) => onError(err, `endpoint ${e.name}: store`), stats.spoolHooks());
      return new Endpoint(e, {
        store: stores.queue,
        deadLetters: stores.deadLetters,
        stats,
        drainTimeoutMs: e.queuePurgeTimeoutMs ?? parsed.queue.drainTimeoutMs,
        onError: (err) => onError(err, `endpoint ${e.name}`),
      });
    });
  const broadcaster: Sink = new Broadcaster(endpoints, {
    onError: (err, i) => onError(err, `endpoint ${endpoints[i].name}`),
  });
  // The feed takes every event emitted, before any endpoint's filter.
  const feed = parsed.feed.enabled ? new EventFeed(deliveryLog, { poll: parsed.queue.type !== 'memory', retentionMs: parsed.log.retentionMs }) : undefined;
  const emitter = createEmitter({
    sink: feed ? feed.recordingSink(broadcaster) : broadcaster,
    source,
    baseUrl: options.baseUrl,
    relativeUrls: options.relativeUrls,
    pathPrefix: options.pathPrefix,
    actor: options.actor,
    actorFromBasicAuth: options.actorFromBasicAuth ?? false,
    trustProxy: options.trustProxy,
    emitImmediately: options.emitImmediately ?? false,
    commitTimeoutMs: parsed.queue.commitTimeoutMs,
    onStoreError: parsed.queue.onStoreError,
    includeReferences: parsed.includeReferences,
    onError,
  });

  let closed: Promise<void> | undefined;
  // With no endpoint and no feed, no event has anywhere to go: requests pass through untouched.
  const idle = endpoints.length === 0 && !feed;
  const passThrough: RequestHandler = (_req, _res, next) => next();
  const idleBridge = new Bridge({ sink: broadcaster, urls: urlBuilderFor(''), source, actor: {}, request: { id: '', method: '', useragent: '' } });
  return {
    middleware: idle ? passThrough : emitter.middleware,
    repository: (req, repo) => (idle ? repo : listenRepository(repo, emitter.bridgeOf(req), (err, op) => onError(err, op))),
    bridge: (req) => (idle ? idleBridge : emitter.bridgeOf(req)),
    endpoints,
    config: parsed,
    metricsRegistry,
    source,
    endpoint: (name) => {
      const found = endpoints.find((e) => e.name === name);
      if (!found) throw new RangeError(`no endpoint named ${JSON.stringify(name)}; endpoints: ${endpoints.map((e) => e.name).join(', ') || 'none'}`);
      return found;
    },
    debugVars: () => endpoints.map(endpointVars),
    ready: async () => {
      await Promise.all(endpoints.map((e) => e.start()));
      // After the queues: a server that is down is reported by the store that matters most.
      if (endpoints.length > 0 || feed) await deliveryLog.log.open?.();
    },
    deliveryLog,
    feed,
    // The log is closed last: what delivery does while draining is recorded. Feed readers
    // waiting are answered first.
    close: () => {
      feed?.close();
      return (closed ??= broadcaster.close().finally(() => deliveryLog.close()));
    },
  };
}

