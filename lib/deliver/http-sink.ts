import http from 'node:http';
import type https from 'node:https';
import { DEFAULTS } from '../config/defaults';
import { isHeaderName, unsafeHeaderChar } from '../config/values';
import { isSecretHeader, parseEndpointUrl } from './endpoint-url';
import type { EnvelopeVersion, Event } from '../model/event';
import { payloadEncoder, type EncodedRequest } from '../codec/payload';
import { HttpTransport } from './http-transport';
import { ClosedSinkError, type Sink } from './sink';

/** What an HttpSink reports about each attempt; the stats code implements these. */
export interface HttpSinkHooks {
  /** The endpoint answered 2xx or 3xx. */
  success?(status: number, events: readonly Event[], durationMs: number, detail?: AttemptDetail): void;
  /** The endpoint answered another status. */
  failure?(status: number, events: readonly Event[], durationMs: number, detail?: AttemptDetail): void;
  /** No answer: connection refused or dropped, timeout, TLS failure. */
  error?(err: Error, events: readonly Event[], durationMs: number, detail?: AttemptDetail): void;
}

/** One request of an HttpSink, as the attempt log keeps it. */
export interface AttemptDetail {
  /** 1 for the first write of these very events (the same array), 2 for its first retry, … */
  attempt: number;
  /** The status, when the endpoint answered. */
  status?: number;
  /** The first KiB of the answer's body, when there was an answer. */
  response?: string;
  /** Why there was no answer. */
  error?: Error;
  durationMs: number;
}

/**
 * The last request made for these very events (the array a sink was given), by any
 * HttpSink: how a caller of a direct write (a test event) learns what the endpoint said.
 * Held weakly: it goes when the array does.
 */
const lastAttempts = new WeakMap<readonly Event[], AttemptDetail>();

/** The last request an HttpSink made for this array of events, if any. */
export function lastAttempt(events: readonly Event[]): AttemptDetail | undefined {
  return lastAttempts.get(events);
}

export interface HttpSinkOptions {
  /**
   * Deadline in ms for one attempt (`timeout`), from the request's start until the whole
   * answer has arrived; 0 means none. @default 1000 (1s)
   */
  timeoutMs?: number;
  /**
   * Static headers sent with every request, as in Distribution's `headers` (a list per
   * name). A name that is not an HTTP token, or a value with CR, LF, NUL or another
   * character HTTP cannot carry, throws a TypeError at construction.
   */
  headers?: Record<string, readonly string[]>;
  /** Envelope generation when no `encode` is given. @default 'v1' */
  version?: EnvelopeVersion;
  /** Turns events into a body; default: Distribution's envelope of the chosen version. */
  encode?(events: readonly Event[]): EncodedRequest;
  /** Adds headers computed from the final body, e.g. signatures. */
  sign?(body: string, events: readonly Event[]): Record<string, string>;
  /** Agent for `https:` URLs, e.g. one trusting a private CA; not destroyed by `close`. @default a keep-alive agent */
  httpsAgent?: https.Agent;
  /** Bytes of each answer's body reported to the hooks (`detail.response`). @default 1024 (1 KiB) */
  captureBytes?: number;
  hooks?: HttpSinkHooks;
}

/** A body prepared ahead is sent only this soon after: past it, it is signed again, stamped anew. */
const PREPARED_MAX_AGE_MS = 1000;

/** The endpoint answered with a status that is not success. */
export class HttpStatusError extends Error {
  override readonly name = 'HttpStatusError';
  constructor(
    readonly url: string,
    readonly status: number,
    /** From `Retry-After` on 429 and 503, in ms. */
    readonly retryAfterMs?: number,
  ) {
    super(`POST ${url}: response status ${status} ${http.STATUS_CODES[status] ?? ''} unaccepted`.trimEnd());
  }
}

/** The endpoint could not be reached or did not answer in time. */
export class HttpDeliveryError extends Error {
  override readonly name = 'HttpDeliveryError';
  constructor(
    readonly url: string,
    override readonly cause: Error,
  ) {
    super(`POST ${url}: ${cause.message}`);
  }
}

/** Parses `Retry-After` (seconds or an HTTP date) into ms; undefined when absent or invalid. */
export function parseRetryAfter(value: string | undefined, now = Date.now()): number | undefined {
  if (!value) return undefined;
  if (/^\d+$/.test(value.trim())) return Number(value.trim()) * 1000;
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

/** Throws a TypeError naming the header when Node would refuse it on every request. */
function checkHeader(name: string, values: readonly string[]): void {
  if (!isHeaderName(name)) throw new TypeError(`header ${JSON.stringify(name)}: the name is not a valid HTTP token`);
  for (const value of values) {
    const bad = unsafeHeaderChar(value);
    if (bad) throw new TypeError(`header ${JSON.stringify(name)}: a value contains ${bad}, which an HTTP header cannot carry`);
  }
}

/**
 * POSTs each write as one request to a URL over keep-alive connections. 2xx and 3xx are
 * success, as in Distribution; redirects are not followed. The URL is parsed and the
 * configured headers checked at construction: either, when invalid, throws a TypeError.
 */
export class HttpSink implements Sink {
  private readonly transport: HttpTransport;
  private readonly hooks: HttpSinkHooks;
  private readonly encode: (events: readonly Event[]) => EncodedRequest;
  /** User-Agent and the configured headers, sent with every request. */
  private readonly staticHeaders: Record<string, string | string[]>;
  /** Their names by lower case. */
  private readonly staticNames = new Map<string, string>();
  private prepared?: { events: readonly Event[]; at: number; encoded: EncodedRequest; signature?: Record<string, string> };
  /** Credentials this sink sends, to be cut out of answers it reports (an endpoint may echo them). */
  private readonly secrets: string[] = [];
  private closed = false;

  /** The URL as messages show it: `user:password@` and secret-looking query values redacted. */
  readonly url: string;

  constructor(
    url: string,
    private readonly options: HttpSinkOptions = {},
  ) {
    const target = parseEndpointUrl(url);
    this.url = target.shown;
    this.hooks = options.hooks ?? {};
    this.encode = options.encode ?? payloadEncoder('distribution', options.version);
    this.staticHeaders = { 'User-Agent': DEFAULTS.http.userAgent };
    // Credentials in the URL go as Basic auth, as Distribution's client sends them,
    // unless an Authorization header is configured.
    if (target.authorization) this.staticHeaders.Authorization = target.authorization;
    for (const [name, values] of Object.entries(options.headers ?? {})) {
      checkHeader(name, values);
      if (name.toLowerCase() === 'authorization') delete this.staticHeaders.Authorization;
      this.staticHeaders[name] = [...values];
    }
    for (const name of Object.keys(this.staticHeaders)) this.staticNames.set(name.toLowerCase(), name);
    for (const [name, value] of Object.entries(this.staticHeaders)) {
      if (!isSecretHeader(name)) continue;
      for (const v of [value].flat()) {
        // The whole value, and the credential after a scheme such as `Bearer `.
        this.secrets.push(v, v.replace(/^[A-Za-z]+ +/, ''));
      }
    }
    this.secrets = this.secrets.filter((v, i, all) => v.length >= 4 && all.indexOf(v) === i).sort((a, b) => b.length - a.length);
    this.transport = new HttpTransport(target.href, {
      timeoutMs: options.timeoutMs ?? DEFAULTS.endpoint.timeoutMs,
      httpsAgent: options.httpsAgent,
      captureBytes: options.captureBytes,
    });
  }

  async write(events: readonly Event[]): Promise<void> {
    if (this.closed) throw new ClosedSinkError(`http sink ${this.url}`);
    const { encoded, signature } = this.takePrepared(events) ?? this.encodeAndSign(events);
    // A retry gets the very array again (the retrying sink's loop): that counts its attempts.
    const attempt = (lastAttempts.get(events)?.attempt ?? 0) + 1;
    const started = performance.now();
    let status: number;
    let retryAfter: string | undefined;
    let response: string;
    try {
      const res = await this.transport.post(encoded.body, this.headersWith(encoded.headers, signature));
      status = res.status;
      response = this.secrets.length > 0 && res.body ? this.redact(res.body) : res.body;
      if (status === 429 || status === 503) retryAfter = res.headers['retry-after'];
    } catch (err) {
      const error = new HttpDeliveryError(this.url, err as Error);
      const detail: AttemptDetail = { attempt, error, durationMs: performance.now() - started };
      lastAttempts.set(events, detail);
      this.hooks.error?.(error, events, detail.durationMs, detail);
      throw error;
    }
    const detail: AttemptDetail = { attempt, status, response, durationMs: performance.now() - started };
    lastAttempts.set(events, detail);
    if (status >= 200 && status < 400) {
      this.hooks.success?.(status, events, detail.durationMs, detail);
      return;
    }
    this.hooks.failure?.(status, events, detail.durationMs, detail);
    const wait = status === 429 || status === 503 ? parseRetryAfter(retryAfter) : undefined;
    throw new HttpStatusError(this.url, status, wait);
  }

  /** The answer's text with any credential this sink sends replaced. */
  private redact(text: string): string {
    for (const secret of this.secrets) if (text.includes(secret)) text = text.split(secret).join('<redacted>');
    return text;
  }

  /**
   * Encodes and signs the events ahead of their write, while the previous request is in
   * flight: it takes the body and the HMAC off the path between two requests.
   */
  prepare(events: readonly Event[]): void {
    if (this.closed) return;
    this.prepared = { events, at: performance.now(), ...this.encodeAndSign(events) };
  }

  private encodeAndSign(events: readonly Event[]): { encoded: EncodedRequest; signature?: Record<string, string> } {
    const encoded = this.encode(events);
    return { encoded, signature: this.options.sign?.(encoded.body, events) };
  }

  /** What `prepare` made for these very events, if it is fresh enough to send (its signature is timestamped). */
  private takePrepared(events: readonly Event[]) {
    const p = this.prepared;
    this.prepared = undefined;
    return p && p.events === events && performance.now() - p.at < PREPARED_MAX_AGE_MS ? p : undefined;
  }

  /** The static headers with these added, each replacing a static one of its name in any case. */
  private headersWith(...extras: (Record<string, string> | undefined)[]): Record<string, string | string[]> {
    const out = { ...this.staticHeaders };
    for (const extra of extras) {
      for (const name of Object.keys(extra ?? {})) {
        const shadowed = this.staticNames.get(name.toLowerCase());
        if (shadowed !== undefined && shadowed !== name) delete out[shadowed];
        out[name] = extra![name];
      }
    }
    return out;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.transport.close();
  }
}
