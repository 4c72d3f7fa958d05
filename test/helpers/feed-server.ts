import type { AddressInfo } from 'node:net';
import type http from 'node:http';
import express from 'express';
import { createNotifications, createStatsRouter, type Notifications, type NotificationsOptions } from '../../lib';
import { sha256Digest } from '../../lib/model/manifest';

const manifest = {
  mediaType: 'application/vnd.oci.image.manifest.v1+json',
  payload: Buffer.from(JSON.stringify({ schemaVersion: 2, config: { mediaType: 'c', size: 2, digest: 'sha256:' + 'b'.repeat(64) }, layers: [] })),
};
const blob = { mediaType: 'application/octet-stream', size: 2, digest: sha256Digest(Buffer.from('hi')) };

/** Operations a test asks the server to report, by the topic of the event each makes. */
export type FeedOp = 'manifest-push' | 'manifest-pull' | 'blob-push' | 'tag-delete';

/**
 * A registry-shaped app on a real port: the notifications middleware, a route that
 * reports operations through the request's bridge (as a registry's storage does), and the
 * stats router, which serves the feed at `/events`.
 */
export class FeedServer {
  url = '';
  private server?: http.Server;
  private constructor(readonly notifications: Notifications) {}

  static async start(config: object, options: NotificationsOptions & { port?: number } = {}): Promise<FeedServer> {
    const notifications = createNotifications(config, { onError: () => undefined, ...options });
    await notifications.ready();
    const s = new FeedServer(notifications);
    const app = express();
    app.use(notifications.middleware);
    app.post('/emit/:op', async (req, res) => {
      const bridge = notifications.bridge(req);
      const count = Number(req.query.count ?? 1);
      const repo = String(req.query.repo ?? 'demo/app');
      for (let i = 0; i < count; i++) {
        const op = req.params.op as FeedOp;
        if (op === 'manifest-push') await bridge.manifestPushed(repo, manifest, { tag: `v${i}` });
        else if (op === 'manifest-pull') await bridge.manifestPulled(repo, manifest, { tag: `v${i}` });
        else if (op === 'blob-push') await bridge.blobPushed(repo, blob);
        else if (op === 'tag-delete') await bridge.tagDeleted(repo, `v${i}`);
        else return void res.status(400).end();
      }
      res.status(201).end();
    });
    app.use(createStatsRouter(notifications));
    await new Promise<void>((resolve) => (s.server = app.listen(options.port ?? 0, '127.0.0.1', () => resolve())));
    s.url = `http://127.0.0.1:${(s.server!.address() as AddressInfo).port}`;
    return s;
  }

  /** Reports `count` operations in one request; its events are written when it answers. */
  async emit(op: FeedOp, count = 1, repo = 'demo/app'): Promise<void> {
    const res = await fetch(`${this.url}/emit/${op}?count=${count}&repo=${encodeURIComponent(repo)}`, { method: 'POST' });
    if (res.status !== 201) throw new Error(`emit ${op}: ${res.status}`);
  }

  get feedUrl(): string {
    return `${this.url}/events`;
  }

  async close(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise((resolve) => this.server?.close(resolve));
    await this.notifications.close();
  }
}
