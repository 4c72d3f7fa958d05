import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { HttpTimeoutError, HttpTransport } from '../../lib/deliver/http-transport';
import { startTlsServer } from '../helpers/tls';

interface Seen {
  url: string;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** An HTTP server on 127.0.0.1 that records each request, then answers as `answer` says. */
async function httpServer(answer: (res: http.ServerResponse, seen: Seen) => void = (res) => res.writeHead(200).end()) {
  const seen: Seen[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const s = { url: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks).toString('utf8') };
      seen.push(s);
      answer(res, s);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const stop = async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  };
  return { server, seen, url, stop };
}

/** A raw TCP server on 127.0.0.1: `onSocket` writes whatever bytes it likes. */
async function tcpServer(onSocket: (socket: net.Socket) => void) {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    onSocket(socket);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
  const stop = async () => {
    for (const s of sockets) s.destroy();
    await new Promise((r) => server.close(r));
  };
  return { url, stop };
}

describe('HttpTransport', () => {
  it('POSTs the body to the path and query, with the headers and its UTF-8 Content-Length', async () => {
    const { seen, url, stop } = await httpServer();
    const transport = new HttpTransport(`${url}/hooks/registry?team=a`, { timeoutMs: 1000 });
    const headers = { 'Content-Type': 'application/json', 'content-length': '1', 'X-Multi': ['a', 'b'] };
    const body = '{"name":"café ☕"}';
    await transport.post(body, headers);
    expect(seen).toHaveLength(1);
    expect(seen[0].url).toBe('/hooks/registry?team=a');
    expect(seen[0].body).toBe(body);
    expect(seen[0].headers['content-length']).toBe(String(Buffer.byteLength(body)));
    expect(seen[0].headers['content-type']).toBe('application/json');
    expect(seen[0].headers['x-multi']).toBe('a, b');
    expect(headers).toEqual({ 'Content-Type': 'application/json', 'content-length': '1', 'X-Multi': ['a', 'b'] });
    transport.close();
    await stop();
  });

  it('resolves any status with the answer\'s headers once its body has ended, over one kept-alive connection', async () => {
    const { server, url, stop } = await httpServer((res, s) =>
      s.body === 'first' ? res.writeHead(503, { 'Retry-After': '7' }).end('busy, come back later') : res.writeHead(301, { Location: '/elsewhere' }).end(),
    );
    let connections = 0;
    server.on('connection', () => connections++);
    const transport = new HttpTransport(`${url}/`, { timeoutMs: 1000 });
    const first = await transport.post('first', {});
    expect(first.status).toBe(503);
    expect(first.headers['retry-after']).toBe('7');
    const second = await transport.post('second', {});
    expect(second.status).toBe(301);
    expect(second.headers.location).toBe('/elsewhere');
    expect(connections).toBe(1);
    transport.close();
    await stop();
  });

  it('rejects with the underlying error when the connection is refused', async () => {
    const { url, stop } = await tcpServer(() => undefined);
    await stop(); // the port is now closed
    const transport = new HttpTransport(url, { timeoutMs: 1000 });
    await expect(transport.post('x', {})).rejects.toMatchObject({ code: 'ECONNREFUSED' });
    transport.close();
  });

  it('rejects with the reset, not a timeout, when the connection drops in the middle of the body', async () => {
    const { url, stop } = await tcpServer((socket) => {
      socket.once('data', () => socket.write('HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial', () => socket.destroy()));
    });
    const transport = new HttpTransport(url, { timeoutMs: 5000 });
    const err = await transport.post('x', {}).catch((e) => e);
    expect(err).not.toBeInstanceOf(HttpTimeoutError);
    expect(err.code).toBe('ECONNRESET');
    transport.close();
    await stop();
  });

  it('holds the deadline against a status line and headers trickled a byte every 100 ms', async () => {
    const head = `HTTP/1.1 200 OK\r\nContent-Length: 0\r\nX-Padding: ${'x'.repeat(600)}\r\n\r\n`; // a minute of trickle
    const { url, stop } = await tcpServer((socket) => {
      let i = 0;
      const tick = setInterval(() => (i < head.length ? socket.write(head[i++]) : clearInterval(tick)), 100);
      socket.on('close', () => clearInterval(tick));
    });
    const transport = new HttpTransport(url, { timeoutMs: 300 });
    const err = await transport.post('x', {}).catch((e) => e);
    expect(err).toBeInstanceOf(HttpTimeoutError);
    expect(err.message).toBe('timeout of 300ms exceeded');
    expect(err.code).toBe('ETIMEDOUT');
    transport.close();
    await stop();
  }, 10_000);

  it('refuses a URL it cannot POST to at construction', () => {
    expect(() => new HttpTransport('ftp://127.0.0.1/', { timeoutMs: 1000 })).toThrow(new TypeError('ftp://127.0.0.1/: unsupported scheme ftp:; use http: or https:'));
    expect(() => new HttpTransport('not a url', { timeoutMs: 1000 })).toThrow(expect.objectContaining({ name: 'TypeError', code: 'ERR_INVALID_URL' }));
  });

  it('close() ends the connections of the agent it made', async () => {
    const { server, url, stop } = await httpServer();
    const closed = new Promise<void>((resolve) => server.on('connection', (socket) => socket.on('close', () => resolve())));
    const transport = new HttpTransport(`${url}/`, { timeoutMs: 1000 });
    await transport.post('x', {});
    transport.close();
    await closed; // the kept-alive connection, ended by the transport rather than by the server
    await stop();
  });

  describe('over TLS', () => {
    let tls: Awaited<ReturnType<typeof startTlsServer>>;
    let url: string;
    let cert: string;
    beforeAll(async () => {
      tls = await startTlsServer(204);
      ({ url, cert } = tls);
    });
    afterAll(() => tls.close());

    it('rejects with the TLS error when the certificate is not trusted', async () => {
      const transport = new HttpTransport(url, { timeoutMs: 1000 });
      await expect(transport.post('x', {})).rejects.toMatchObject({ code: 'DEPTH_ZERO_SELF_SIGNED_CERT' });
      transport.close();
    });

    it('uses a caller\'s agent and leaves it open on close()', async () => {
      const agent = new https.Agent({ ca: cert, keepAlive: true });
      const transport = new HttpTransport(url, { timeoutMs: 1000, httpsAgent: agent });
      expect((await transport.post('x', {})).status).toBe(204);
      transport.close();
      await new Promise((r) => setImmediate(r));
      expect(Object.values(agent.freeSockets).flat()).toHaveLength(1);
      agent.destroy();
    });
  });
});
