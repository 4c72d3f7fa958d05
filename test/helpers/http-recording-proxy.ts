import http from 'node:http';
import type { AddressInfo } from 'node:net';

/** One request a client made through the proxy, and what it was answered. */
export interface Exchange {
  index: number;
  method: string;
  url: string;
  /** performance.now() when the request reached the proxy. */
  startedAt: number;
  /** performance.now() when the whole answer had been handed to the client; undefined if it never was. */
  answeredAt?: number;
  /** The registry's status; undefined when the registry never answered (it was killed). */
  status?: number;
}

/**
 * An HTTP proxy on 127.0.0.1 in front of a registry, for clients such as skopeo: it keeps
 * its address while the registry behind it is killed and restarted on another port
 * (`target`), and records every request with the status the client was given, so a test
 * knows which operations the client saw succeed. `onRequest` runs as each request arrives
 * (e.g. to kill the registry at the n-th one).
 */
export class HttpRecordingProxy {
  readonly exchanges: Exchange[] = [];
  /** Port of the registry now. */
  target = 0;
  onRequest: (x: Exchange) => void = () => undefined;
  private readonly agent = new http.Agent({ keepAlive: false });
  private readonly server = http.createServer((req, res) => {
    const x: Exchange = { index: this.exchanges.length, method: req.method ?? '', url: req.url ?? '', startedAt: performance.now() };
    this.exchanges.push(x);
    const upstream = http.request(
      { host: '127.0.0.1', port: this.target, method: req.method, path: req.url, headers: req.headers, agent: this.agent },
      (answer) => {
        x.status = answer.statusCode;
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
        answer.on('error', () => res.destroy());
        res.on('finish', () => {
          if (answer.complete) x.answeredAt = performance.now();
        });
      },
    );
    // The registry went away mid-request: the client sees its connection dropped, as it would without the proxy.
    upstream.on('error', () => res.destroy());
    req.pipe(upstream);
    this.onRequest(x);
  });

  async start(): Promise<this> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    return this;
  }

  get host(): string {
    return `127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  /** Requests answered in full, with a status in [200, 300). */
  succeeded(): Exchange[] {
    return this.exchanges.filter((x) => x.answeredAt !== undefined && x.status !== undefined && x.status >= 200 && x.status < 300);
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    this.agent.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
