// Events describe storage: an operation that took effect has its event, whatever becomes of
// the request afterwards (a client that leaves, a later step that fails); an operation
// that failed has none. A real listening server and raw sockets, as a client that hangs up.
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import express, { type Request } from 'express';
import { createNotifications, type Notifications } from '../../lib';
import { sha256Digest } from '../../lib/model/manifest';
import { TestReceiver } from '../helpers/http-receiver';
import { MemoryRepository } from '../helpers/memory-repository';
import { waitFor } from '../helpers/wait';

const manifest = {
  mediaType: 'application/vnd.oci.image.manifest.v1+json',
  payload: Buffer.from(JSON.stringify({ schemaVersion: 2, config: { mediaType: 'c', size: 2, digest: 'sha256:' + 'c'.repeat(64) }, layers: [] })),
};
const digest = sha256Digest(manifest.payload);
const blob = Buffer.from('a layer, uploaded in one request');
const blobDigest = sha256Digest(blob);

/** Holds storage operations until the test lets them finish, so it can hang up first. */
class Gate {
  entered = 0;
  private open?: () => void;
  private opened = new Promise<void>((resolve) => (this.open = resolve));
  async pass(): Promise<void> {
    this.entered++;
    await this.opened;
  }
  release(): void {
    this.open!();
  }
}

/** A registry-shaped app whose deletes and blob commits wait at the gate before storage does them. */
function makeApp(notifications: Notifications, gate: Gate) {
  const storage = new MemoryRepository('demo/app');
  const closed = { count: 0 };
  const app = express();
  app.use(notifications.middleware);
  app.use((_req, res, next) => {
    res.on('close', () => closed.count++);
    next();
  });
  const repo = (req: Request) => notifications.repository(req, storage);
  app.put('/v2/demo/app/manifests/:tag', async (req: Request<{ tag: string }>, res) => {
    await repo(req).manifests.put(manifest, { tag: req.params.tag });
    res.status(201).end();
  });
  app.delete('/v2/demo/app/manifests/:digest', async (req: Request<{ digest: string }>, res, next) => {
    try {
      const r = repo(req);
      const tags = storage.tags.lookup(req.params.digest);
      await gate.pass();
      await r.manifests.delete(req.params.digest);
      for (const t of tags) await r.tags.untag(t);
      res.status(202).end();
    } catch (err) {
      next(err);
    }
  });
  // A monolithic upload: POST with the digest and the whole blob.
  app.post('/v2/demo/app/blobs/uploads/', express.raw({ type: () => true }), async (req, res, next) => {
    try {
      const id = `upload-${Math.random()}`;
      storage.blobs.upload(id, req.body as Buffer);
      await gate.pass();
      await repo(req).blobs.commit(id, String(req.query.digest));
      res.status(201).set('Location', `/v2/demo/app/blobs/${String(req.query.digest)}`).end();
    } catch (err) {
      next(err);
    }
  });
  // Deletes the manifest, then fails writing the answer's bookkeeping.
  app.delete('/v2/demo/app/then-fail/:digest', async (req: Request<{ digest: string }>, res) => {
    await repo(req).manifests.delete(req.params.digest);
    res.status(500).json({ errors: [{ code: 'UNKNOWN', message: 'audit log unavailable after the delete' }] });
  });
  app.use((err: Error, _req: Request, res: express.Response, _next: express.NextFunction) => {
    res.status(404).json({ errors: [{ code: 'MANIFEST_UNKNOWN', message: err.message }] });
  });
  return { app, storage, closed };
}

/** Sends a complete request over a raw socket and resolves with the socket, unanswered. */
async function send(port: number, head: string, body: Buffer = Buffer.alloc(0)): Promise<net.Socket> {
  const socket = net.connect(port, '127.0.0.1');
  await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
  socket.write(Buffer.concat([Buffer.from(`${head}\r\nHost: 127.0.0.1:${port}\r\nContent-Length: ${body.length}\r\n\r\n`), body]));
  return socket;
}

describe('events follow what storage did, not what became of the request', () => {
  let receiver: TestReceiver;
  let notifications: Notifications;
  let server: Server;
  let port: number;
  let gate: Gate;
  let app: ReturnType<typeof makeApp>;

  beforeEach(async () => {
    receiver = await new TestReceiver().start();
    notifications = createNotifications({ endpoints: [{ name: 'hook', url: receiver.url, backoff: '10ms' }] });
    gate = new Gate();
    app = makeApp(notifications, gate);
    server = app.app.listen(0, '127.0.0.1');
    await new Promise((r) => server.once('listening', r));
    port = (server.address() as AddressInfo).port;
  });
  afterEach(async () => {
    gate.release();
    await notifications.close();
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
    await receiver.stop();
  });

  /** A push by tag, answered: its event arrives after any the tests expect before it. */
  const marker = async (tag: string) => {
    const res = await fetch(`http://127.0.0.1:${port}/v2/demo/app/manifests/${tag}`, { method: 'PUT' });
    expect(res.status).toBe(201);
  };

  it('sends the deletes of a DELETE whose client hung up before the answer', async () => {
    await marker('v1');
    const socket = await send(port, `DELETE /v2/demo/app/manifests/${digest} HTTP/1.1`);
    await waitFor(() => gate.entered === 1);
    socket.destroy();
    await waitFor(() => app.closed.count === 2, { describe: () => app.closed }); // the marker's response and this one
    gate.release(); // storage deletes only now, after the server saw the client go
    await waitFor(() => !app.storage.manifestsByDigest.has(digest));
    await receiver.until((r) => r.events.length === 3);
    expect(receiver.events.map((e) => `${e.action} ${e.target.tag ?? e.target.digest}`)).toEqual([
      'push v1',
      `delete ${digest}`,
      'delete v1',
    ]);
  });

  it('sends the push of a monolithic blob upload whose client hung up before the answer', async () => {
    const socket = await send(port, `POST /v2/demo/app/blobs/uploads/?digest=${blobDigest} HTTP/1.1\r\nContent-Type: application/octet-stream`, blob);
    await waitFor(() => gate.entered === 1);
    socket.destroy();
    await waitFor(() => app.closed.count === 1, { describe: () => app.closed });
    gate.release();
    await receiver.until((r) => r.events.length === 1);
    expect(receiver.events[0]).toMatchObject({ action: 'push', target: { digest: blobDigest, size: blob.length, mediaType: 'application/octet-stream' } });
    expect(app.storage.blobMap.has(blobDigest)).toBe(true);
  });

  it('sends nothing for an operation that failed, answered or not', async () => {
    gate.release();
    const unknown = 'sha256:' + 'd'.repeat(64);
    // Answered: 404, storage had nothing to delete.
    expect((await fetch(`http://127.0.0.1:${port}/v2/demo/app/manifests/${unknown}`, { method: 'DELETE' })).status).toBe(404);
    // Unanswered: the client hangs up, and the commit fails on a digest that does not match.
    const socket = await send(port, `POST /v2/demo/app/blobs/uploads/?digest=${unknown} HTTP/1.1`, blob);
    socket.destroy();
    await waitFor(() => app.closed.count === 2, { describe: () => app.closed });
    await marker('after');
    await receiver.until((r) => r.events.length >= 1);
    await notifications.close(); // delivers what is queued; anything wrongly sent is in by now
    expect(receiver.events.map((e) => `${e.action} ${e.target.tag ?? e.target.digest}`)).toEqual(['push after']);
  });

  it('sends the event of an operation whose request failed in a later step', async () => {
    gate.release();
    await marker('v1');
    const res = await fetch(`http://127.0.0.1:${port}/v2/demo/app/then-fail/${digest}`, { method: 'DELETE' });
    expect(res.status).toBe(500);
    await receiver.until((r) => r.events.length === 2);
    expect(receiver.events[1]).toMatchObject({ action: 'delete', target: { repository: 'demo/app', digest } });
    expect(receiver.events[1].request.method).toBe('DELETE');
  });
});
