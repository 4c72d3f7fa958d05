import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { decodeEnvelope, encodeEnvelope, verifyWebhook, type Event } from '../../lib';
import { HttpDeliveryError, HttpSink, HttpStatusError, parseRetryAfter } from '../../lib/deliver/http-sink';
import { webhookSigner } from '../../lib/codec/signing';
import { makeEvents } from '../helpers/events';
import { TestReceiver } from '../helpers/http-receiver';
import { startTlsServer } from '../helpers/tls';

function recorder() {
  const calls: string[] = [];
  return {
    calls,
    hooks: {
      success: (s: number, e: readonly Event[]) => calls.push(`success ${s} x${e.length}`),
      failure: (s: number, e: readonly Event[]) => calls.push(`failure ${s} x${e.length}`),
      error: (_err: Error, e: readonly Event[]) => calls.push(`error x${e.length}`),
    },
  };
}

describe('HttpSink', () => {
  let receiver: TestReceiver;
  beforeEach(async () => {
    receiver = await new TestReceiver().start();
  });
  afterEach(() => receiver.stop());

  it('POSTs Distribution\'s envelope with its media type and the configured headers', async () => {
    const { calls, hooks } = recorder();
    const sink = new HttpSink(receiver.url, { headers: { Authorization: ['Bearer secret-token'], 'X-Multi': ['a', 'b'] }, hooks });
    const events = makeEvents(2);
    await sink.write(events);
    const req = receiver.requests[0];
    expect(req.method).toBe('POST');
    expect(req.headers['content-type']).toBe('application/vnd.docker.distribution.events.v1+json');
    expect(req.headers.authorization).toBe('Bearer secret-token');
    expect(req.headers['x-multi']).toBe('a, b');
    expect(req.body).toBe(encodeEnvelope(events));
    expect(calls).toEqual(['success 200 x2']);
    await sink.close();
  });

  it('sends one Content-Type, the envelope\'s, when the configured headers name another in any case', async () => {
    const sink = new HttpSink(receiver.url, { headers: { 'content-TYPE': ['text/plain'] } });
    await sink.write(makeEvents(1));
    const raw = receiver.requests[0].rawHeaders.filter((_, i, all) => i % 2 === 0 && all[i].toLowerCase() === 'content-type');
    expect(raw).toHaveLength(1);
    expect(receiver.requests[0].headers['content-type']).toBe('application/vnd.docker.distribution.events.v1+json');
    await sink.close();
  });

  it('sends what prepare() made for the same events, signed, and ignores it for other events', async () => {
    const secret = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';
    const sink = new HttpSink(receiver.url, { sign: webhookSigner([secret]) });
    const [a, b] = [makeEvents(1), makeEvents(1)];
    sink.prepare(a);
    await sink.write(a);
    sink.prepare(a);
    await sink.write(b); // not what was prepared: encoded and signed afresh
    expect(receiver.requests.map((r) => decodeEnvelope(r.body).events[0].id)).toEqual([a[0].id, b[0].id]);
    for (const r of receiver.requests) {
      expect(verifyWebhook([secret], r.headers as Record<string, string>, r.body).id).toBe(decodeEnvelope(r.body).events[0].id);
    }
    await sink.close();
  });

  it('sends the v2 media type when asked', async () => {
    const sink = new HttpSink(receiver.url, { version: 'v2' });
    await sink.write(makeEvents(1));
    expect(receiver.requests[0].headers['content-type']).toBe('application/vnd.docker.distribution.events.v2+json');
    expect(decodeEnvelope(receiver.requests[0].body).events).toHaveLength(1);
    await sink.close();
  });

  it('counts a 307 as success without following it, as Distribution does', async () => {
    receiver.respond = () => 307;
    const { calls, hooks } = recorder();
    const sink = new HttpSink(receiver.url, { hooks });
    await sink.write(makeEvents(1));
    expect(calls).toEqual(['success 307 x1']);
    expect(receiver.requests).toHaveLength(1);
    await sink.close();
  });

  it('fails on a 400 with an error naming the URL and status', async () => {
    receiver.respond = () => 400;
    const { calls, hooks } = recorder();
    const sink = new HttpSink(receiver.url, { hooks });
    const err = await sink.write(makeEvents(3)).catch((e) => e);
    expect(err).toBeInstanceOf(HttpStatusError);
    expect(err.message).toBe(`POST ${receiver.url}: response status 400 Bad Request unaccepted`);
    expect(calls).toEqual(['failure 400 x3']);
    await sink.close();
  });

  it('reads Retry-After on 429 and 503', async () => {
    receiver.respond = (_r, i) => (i === 0 ? { status: 429, headers: { 'Retry-After': '2' } } : { status: 503, headers: { 'Retry-After': 'soon' } });
    const sink = new HttpSink(receiver.url);
    expect((await sink.write(makeEvents(1)).catch((e) => e)).retryAfterMs).toBe(2000);
    expect((await sink.write(makeEvents(1)).catch((e) => e)).retryAfterMs).toBeUndefined();
    expect(parseRetryAfter(new Date(Date.now() + 5000).toUTCString())).toBeGreaterThan(3000);
    await sink.close();
  });

  it('reports a connection dropped without an answer as an error', async () => {
    const server = net.createServer((socket) => socket.destroy());
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
    const { calls, hooks } = recorder();
    const sink = new HttpSink(url, { hooks });
    const err = await sink.write(makeEvents(1)).catch((e) => e);
    expect(err).toBeInstanceOf(HttpDeliveryError);
    expect(err.message).toContain(`POST ${url}`);
    expect(calls).toEqual(['error x1']);
    await sink.close();
    await new Promise((r) => server.close(r));
  });

  it('reports a timeout as an error', async () => {
    const server = net.createServer((socket) => socket.resume()); // reads, never answers
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const sink = new HttpSink(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`, { timeoutMs: 50 });
    const err = await sink.write(makeEvents(1)).catch((e) => e);
    expect(err).toBeInstanceOf(HttpDeliveryError);
    expect(err.message).toMatch(/timeout/i);
    await sink.close();
    await new Promise((r) => server.close(r));
  });

  describe('deadline', () => {
    let server: http.Server;
    let url: string;
    /** Answers each request as `answer` says; the sink under test has `timeoutMs: 300`. */
    async function serve(answer: (req: http.IncomingMessage, res: http.ServerResponse) => void): Promise<void> {
      server = http.createServer((req, res) => {
        req.resume();
        req.on('end', () => answer(req, res));
      });
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
    }
    afterEach(async () => {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    });

    it('bounds the whole answer: a body trickled a byte every 100 ms fails the write', async () => {
      const length = 600; // 60 s of trickle: only the deadline ends the write first
      let sent = 0;
      await serve((_req, res) => {
        res.writeHead(200, { 'Content-Length': length });
        const tick = setInterval(() => {
          res.write('x');
          if (++sent === length) {
            clearInterval(tick);
            res.end();
          }
        }, 100);
        res.on('close', () => clearInterval(tick));
      });
      const { calls, hooks } = recorder();
      const sink = new HttpSink(url, { timeoutMs: 300, hooks });
      const err = await sink.write(makeEvents(1)).catch((e) => e);
      expect(err).toBeInstanceOf(HttpDeliveryError);
      expect(err.message).toBe(`POST ${url}: timeout of 300ms exceeded`);
      expect(sent).toBeLessThan(length);
      expect(calls).toEqual(['error x1']);
      await sink.close();
    }, 10_000);

    it('bounds the wait for the status line and headers', async () => {
      await serve((_req, res) => {
        const later = setTimeout(() => res.writeHead(200).end(), 60_000);
        res.on('close', () => clearTimeout(later));
      });
      const sink = new HttpSink(url, { timeoutMs: 300 });
      const err = await sink.write(makeEvents(1)).catch((e) => e);
      expect(err).toBeInstanceOf(HttpDeliveryError);
      expect(err.message).toMatch(/timeout of 300ms exceeded/);
      await sink.close();
    }, 10_000);

    it('delivers again on a fresh connection after a deadline', async () => {
      let stalled = false;
      await serve((_req, res) => {
        if (!stalled) stalled = true; // the first answer never comes
        else res.writeHead(200).end();
      });
      const sink = new HttpSink(url, { timeoutMs: 300 });
      await expect(sink.write(makeEvents(1))).rejects.toThrow(/timeout of 300ms exceeded/);
      await expect(sink.write(makeEvents(1))).resolves.toBeUndefined();
      await sink.close();
    }, 10_000);
  });

  describe('configured headers', () => {
    it.each([
      ['CR', 'token\rX-Injected: 1'],
      ['LF', 'token\nX-Injected: 1'],
      ['NUL', 'token\0'],
    ])('refuses a value with %s at construction, naming the header', (what, value) => {
      const make = () => new HttpSink(receiver.url, { headers: { Accept: ['*/*'], 'X-Token': ['fine', value] } });
      expect(make).toThrow(TypeError);
      expect(make).toThrow(`header "X-Token": a value contains ${what}`);
    });

    it('refuses a name that is not an HTTP token at construction', () => {
      expect(() => new HttpSink(receiver.url, { headers: { 'X Token': ['a'] } })).toThrow(new TypeError('header "X Token": the name is not a valid HTTP token'));
    });

    it('accepts tabs and Latin-1 text in values', async () => {
      await new HttpSink(receiver.url, { headers: { 'X-Note': ['caf\u00e9'] } }).close();
      const sink = new HttpSink(receiver.url, { headers: { 'X-Note': ['a\tb'] } });
      await sink.write(makeEvents(1));
      expect(receiver.requests[0].headers['x-note']).toBe('a\tb');
      await sink.close();
    });
  });

  describe('over TLS', () => {
    let tls: Awaited<ReturnType<typeof startTlsServer>>;
    let url: string;
    let cert: string;
    beforeAll(async () => {
      tls = await startTlsServer(200);
      ({ url, cert } = tls);
    });
    afterAll(() => tls.close());

    it('refuses an untrusted certificate by default', async () => {
      const sink = new HttpSink(url);
      const err = await sink.write(makeEvents(1)).catch((e) => e);
      expect(err).toBeInstanceOf(HttpDeliveryError);
      expect(err.message).toMatch(/self[- ]signed|certificate/i);
      await sink.close();
    });

    it('delivers with a custom agent that trusts the certificate', async () => {
      const agent = new https.Agent({ ca: cert, keepAlive: true });
      const sink = new HttpSink(url, { httpsAgent: agent });
      await expect(sink.write(makeEvents(1))).resolves.toBeUndefined();
      await sink.close();
      agent.destroy();
    });
  });
});
