import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Event } from '../../lib';
import { FeedServer } from '../helpers/feed-server';
import { deletePrefix, describeWithRedis, REDIS_URL, uniquePrefix } from '../helpers/redis';
import { waitFor } from '../helpers/wait';

interface Page {
  events: Event[];
  cursor?: string;
}

async function page(url: string, query: string): Promise<Page> {
  const res = await fetch(`${url}?${query}`);
  if (res.status !== 200) throw new Error(`${res.status}: ${await res.text()}`);
  return (await res.json()) as Page;
}

const tags = (p: Page) => p.events.map((e) => e.target.tag);

describe('the feed on a SQLite queue', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'feed-sqlite-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('keeps events and a consumer\'s position across a restart', async () => {
    const config = { queue: { type: 'sqlite', path: path.join(dir, 'n.db'), spooldir: path.join(dir, 'spool') }, feed: { enabled: true } };
    let s = await FeedServer.start(config);
    await s.emit('manifest-push', 3);
    const first = await page(s.feedUrl, 'consumer=scanner&limit=2');
    expect(tags(first)).toEqual(['v0', 'v1']);
    // Acknowledges the first page, and reads the third event.
    expect(tags(await page(s.feedUrl, `consumer=scanner&limit=2&cursor=${first.cursor}`))).toEqual(['v2']);
    await s.close();

    s = await FeedServer.start(config);
    try {
      await s.emit('blob-push');
      // A new process on the same file: the consumer goes on from what it acknowledged.
      const next = await page(s.feedUrl, 'consumer=scanner');
      expect(next.events.map((e) => e.target.tag ?? e.action)).toEqual(['v2', 'push']);
      expect(tags(await page(s.feedUrl, 'limit=10'))).toEqual(['v0', 'v1', 'v2', undefined]);
    } finally {
      await s.close();
    }
  });
});

describeWithRedis('the feed on a Redis queue', () => {
  let prefix: string;
  const servers: FeedServer[] = [];
  beforeEach(() => {
    prefix = uniquePrefix('feed');
  });
  afterEach(async () => {
    await Promise.all(servers.splice(0).map((s) => s.close()));
    await deletePrefix(prefix);
  });
  const replica = async () => {
    const s = await FeedServer.start({ queue: { type: 'redis', url: REDIS_URL, prefix }, feed: { enabled: true } });
    servers.push(s);
    return s;
  };

  it('is served the same by two replicas, with one consumer position between them', async () => {
    const [a, b] = [await replica(), await replica()];
    await a.emit('manifest-push', 2);
    await b.emit('manifest-push', 1, 'other/app');
    const fromA = await page(a.feedUrl, 'consumer=scanner&limit=2');
    expect(fromA.events.map((e) => e.target.repository)).toEqual(['demo/app', 'demo/app']);
    expect((await page(b.feedUrl, 'limit=10')).events.map((e) => e.id)).toEqual((await page(a.feedUrl, 'limit=10')).events.map((e) => e.id));
    // The consumer acknowledges on B what it read on A, then continues on A.
    expect((await page(b.feedUrl, `consumer=scanner&cursor=${fromA.cursor}`)).events.map((e) => e.target.repository)).toEqual(['other/app']);
    const last = await page(a.feedUrl, 'consumer=scanner');
    expect(last.events.map((e) => e.target.repository)).toEqual(['other/app']);
  });

  it('wakes a long poll on one replica for an event emitted on the other', async () => {
    const [a, b] = [await replica(), await replica()];
    const answer = page(b.feedUrl, 'wait=20s');
    await waitFor(() => b.notifications.feed!.waiting === 1);
    await a.emit('tag-delete');
    expect((await answer).events.map((e) => e.action)).toEqual(['delete']);
  });

  it('gives a reader every event two replicas emit at once, none skipped', async () => {
    const [a, b] = [await replica(), await replica()];
    const seen: string[] = [];
    let cursor = '';
    let reading = true;
    const reader = (async () => {
      while (reading) {
        const p = await page(a.feedUrl, `cursor=${cursor}&wait=200ms&limit=7`);
        seen.push(...p.events.map((e) => e.id));
        cursor = p.cursor ?? cursor;
      }
    })();
    await Promise.all(Array.from({ length: 20 }, (_, i) => (i % 2 ? a : b).emit('manifest-push', 3)));
    // A replica writes its events to the shared log within its flush interval of the
    // answer (at once only while one of its own readers waits), so B sees A's soon, not
    // necessarily at the moment A answered.
    let all!: Page;
    await waitFor(async () => (all = await page(b.feedUrl, 'limit=1000')).events.length >= 60);
    expect(all.events).toHaveLength(60);
    await waitFor(() => seen.length >= 60);
    reading = false;
    await reader;
    expect(seen).toEqual(all.events.map((e) => e.id));
  });
});
