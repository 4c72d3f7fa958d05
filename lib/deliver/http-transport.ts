import http from 'node:http';
import https from 'node:https';
import { DEFAULTS } from '../config/defaults';

/** What the endpoint answered. Its body has been read to the end; only its first bytes are kept. */
export interface TransportResponse {
  readonly status: number;
  readonly headers: http.IncomingHttpHeaders;
  /** The first `captureBytes` of the body as UTF-8 (a character cut at the end shows as U+FFFD); '' when empty. */
  readonly body: string;
}

export interface HttpTransportOptions {
  /**
   * Deadline in ms for one request, from its start until the whole answer (status line,
   * headers and body) has arrived. 0 means none.
   */
  timeoutMs: number;
  /** Agent for `https:` URLs, e.g. one trusting a private CA. The caller owns it: `close` leaves it alone. */
  httpsAgent?: https.Agent;
  /** Connections kept open by an agent the transport makes itself. @default 4 */
  maxSockets?: number;
  /** Bytes of each answer's body kept in `TransportResponse.body`; 0 keeps none. @default 1024 (1 KiB) */
  captureBytes?: number;
}

/** A request outlived its deadline; the request was destroyed. */
export class HttpTimeoutError extends Error {
  override readonly name = 'HttpTimeoutError';
  readonly code = 'ETIMEDOUT';
  constructor(readonly timeoutMs: number) {
    super(`timeout of ${timeoutMs}ms exceeded`);
  }
}

/**
 * POSTs string bodies to one URL over keep-alive connections, with nothing between the
 * caller and `node:http`: no redirects, proxies, decompression or body parsing. The URL
 * is parsed once, at construction; an invalid URL or a scheme other than `http:` and
 * `https:` throws a TypeError there.
 */
export class HttpTransport {
  private readonly request: typeof http.request;
  private readonly target: http.RequestOptions;
  private readonly agent: http.Agent;
  private readonly ownsAgent: boolean;
  private readonly timeoutMs: number;
  private readonly captureBytes: number;

  constructor(
    readonly url: string,
    options: HttpTransportOptions,
  ) {
    const parsed = new URL(url);
    const secure = parsed.protocol === 'https:';
    if (!secure && parsed.protocol !== 'http:') throw new TypeError(`${url}: unsupported scheme ${parsed.protocol}; use http: or https:`);
    this.timeoutMs = options.timeoutMs;
    this.captureBytes = options.captureBytes ?? DEFAULTS.http.answerCaptureBytes;
    this.request = secure ? https.request : http.request;
    const own = { keepAlive: true, maxSockets: options.maxSockets ?? DEFAULTS.http.maxSockets };
    const given = secure ? options.httpsAgent : undefined;
    this.ownsAgent = given === undefined;
    this.agent = given ?? (secure ? new https.Agent(own) : new http.Agent(own));
    this.target = {
      method: 'POST',
      protocol: parsed.protocol,
      hostname: parsed.hostname.replace(/^\[(.*)\]$/, '$1'),
      port: parsed.port || (secure ? 443 : 80),
      path: parsed.pathname + parsed.search,
      agent: this.agent,
    };
  }

  /**
   * POSTs `body` with `headers` and a Content-Length of its UTF-8 byte length (replacing
   * one in `headers`). Resolves with the answer's status and headers, whatever the status,
   * once its body has ended. Rejects with the underlying error when there is no whole
   * answer (refused, reset, TLS failure) and with an `HttpTimeoutError` past the deadline.
   * `headers` is not modified.
   */
  post(body: string, headers: http.OutgoingHttpHeaders): Promise<TransportResponse> {
    return new Promise<TransportResponse>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const fail = (err: Error) => {
        clearTimeout(timer);
        reject(err);
      };
      const req = this.request({ ...this.target, headers }, (res) => {
        res.on('error', fail);
        // The first bytes of the answer are kept for the attempt log; the rest is discarded as it comes.
        const kept: Buffer[] = [];
        let keptBytes = 0;
        if (this.captureBytes > 0) {
          res.on('data', (chunk: Buffer) => {
            if (keptBytes >= this.captureBytes) return;
            const part = chunk.length > this.captureBytes - keptBytes ? chunk.subarray(0, this.captureBytes - keptBytes) : chunk;
            kept.push(part);
            keptBytes += part.length;
          });
        }
        res.once('end', () => {
          clearTimeout(timer);
          resolve({
            status: res.statusCode ?? 0,
            // Node builds `headers` from the raw list on first read; most answers never need it.
            get headers() {
              return res.headers;
            },
            body: keptBytes === 0 ? '' : Buffer.concat(kept, keptBytes).toString('utf8'),
          });
        });
        res.resume();
      });
      req.on('error', fail);
      if (this.timeoutMs > 0) {
        timer = setTimeout(() => {
          const err = new HttpTimeoutError(this.timeoutMs);
          reject(err);
          req.destroy(err);
        }, this.timeoutMs);
      }
      req.setHeader('Content-Length', Buffer.byteLength(body));
      req.end(body);
    });
  }

  /** Destroys the agent the transport made, and with it its connections; a caller's agent is left open. */
  close(): void {
    if (this.ownsAgent) this.agent.destroy();
  }
}
