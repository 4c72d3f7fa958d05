import http from 'node:http';
import { decodeEnvelope, type Event } from '../../lib';
import { LoopbackListener } from './loopback';
import { testTimeLeftMs } from './wait';

export interface ReceivedRequest {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  /** Names and values as sent, alternating: shows repeated headers. */
  rawHeaders: string[];
  body: string;
}

/**
 * A webhook endpoint on 127.0.0.1 and a free port. `respond` picks each answer's
 * status (default 200), and optionally its headers and body text; every request and
 * decoded event is recorded.
 */
export class TestReceiver extends LoopbackListener {
  readonly requests: ReceivedRequest[] = [];
  readonly events: Event[] = [];
  respond: (req: ReceivedRequest, index: number) => number | { status: number; headers?: Record<string, string>; body?: string } = () => 200;
  protected readonly server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const rec: ReceivedRequest = { method: req.method ?? '', url: req.url ?? '', headers: req.headers, rawHeaders: req.rawHeaders, body: Buffer.concat(chunks).toString('utf8') };
      const answer = this.respond(rec, this.requests.length);
      this.requests.push(rec);
      const { status, headers, body } = typeof answer === 'number' ? { status: answer, headers: {}, body: undefined } : answer;
      if (status >= 200 && status < 400) {
        try {
          this.events.push(...decodeEnvelope(rec.body).events);
        } catch {
          // Not an envelope (another format under test); the raw request is recorded.
        }
      }
      res.writeHead(status, headers);
      res.end(body);
      this.wake();
    });
  });
  private waiters: Array<() => void> = [];

  /**
   * Resolves once `pred` holds for what has been received. Rejects after `timeoutMs`
   * (by default testTimeLeftMs(): within the running test's time limit) with what did
   * arrive, so a test that waits in vain says what it was waiting on.
   */
  until(pred: (r: this) => boolean, timeoutMs = testTimeLeftMs()): Promise<void> {
    if (pred(this)) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== check);
        reject(new Error(`receiver: still waiting after ${timeoutMs}ms for ${pred.toString()}; got ${this.received()}`));
      }, timeoutMs);
      const check = () => {
        if (pred(this)) {
          clearTimeout(timer);
          resolve();
        } else this.waiters.push(check);
      };
      this.waiters.push(check);
    });
  }

  /** A summary of what arrived: counts, then the last requests and events. */
  private received(): string {
    const ids = new Set(this.events.map((e) => e.id));
    const requests = this.requests.slice(-5).map((r) => `${r.method} ${r.url} ${r.headers['content-type'] ?? '-'} ${r.body.length}B`);
    const events = this.events.slice(-10).map((e) => `${e.action} ${e.target.repository ?? '-'}${e.target.tag ? ':' + e.target.tag : ''} ${e.id}`);
    return `${this.requests.length} requests, ${this.events.length} events (${ids.size} distinct ids); last requests [${requests.join('; ')}]; last events [${events.join('; ')}]`;
  }

  private wake(): void {
    const waiting = this.waiters;
    this.waiters = [];
    for (const w of waiting) w();
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
