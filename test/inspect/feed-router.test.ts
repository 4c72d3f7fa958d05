import http from 'node:http';
import express from 'express';
import request from 'supertest';
import { ConfigError, createFeedRouter, createNotifications, createStatsRouter, DEFAULTS, parseNotificationsConfig, type Event } from '../../lib';
import { uuidV7Time } from '../../lib/inspect/event-feed';
import { eventTopic } from '../../lib/model/topic';
import { newEventId } from '../../lib/model/event';
import { FeedServer } from '../helpers/feed-server';
import { sleep, waitFor } from '../helpers/wait';

interface Page {
  events: Event[];
  cursor?: string;
}

const servers: FeedServer[] = [];
async function start(config: object = {}): Promise<FeedServer> {
  const s = await FeedServer.start({ feed: { enabled: true }, ...config });
  servers.push(s);
  return s;
}
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

async function page(s: FeedServer, query: string, headers: Record<string, string> = {}): Promise<{ status: number; body: Page & { error?: string; oldest?: string | null } }> {
  const res = await fetch(`${s.feedUrl}?${query}`, { headers });
  return { status: res.status, body: (await res.json()) as Page & { error?: string } };
}

describe('notifications.feed', () => {
  it('is off by default, read from YAML, and needs an event log to live in', () => {
    expect(DEFAULTS.feed.enabled).toBe(false);
    expect(parseNotificationsConfig({}).feed).toEqual({ enabled: false });
    expect(parseNotificationsConfig({ feed: { enabled: true } }).feed).toEqual({ enabled: true });
    expect(() => parseNotificationsConfig({ feed: { enabled: 'yes' } })).toThrow(ConfigError);
    expect(() => parseNotificationsConfig({ feed: { enabeld: true } })).toThrow(/notifications\.feed\.enabeld: unknown field; did you mean enabled\?/);
    expect(() => parseNotificationsConfig({ feed: { enabled: true }, log: { events: 0 } })).toThrow(/notifications\.feed\.enabled: .*log\.events/);
  });

  it('is not served when off: createFeedRouter says how to turn it on, the stats router leaves /events alone', async () => {
    const n = createNotifications({});
    try {
      expect(() => createFeedRouter(n)).toThrow(/feed\.enabled/);
      await request(express().use(createStatsRouter(n))).get('/events').expect(404);
    } finally {
      await n.close();
    }
  });
});

describe('the feed behind credentials', () => {
  it('asks for them on the stats router and on a router of its own', async () => {
    const n = createNotifications({ feed: { enabled: true } });
    try {
      const stats = express().use(createStatsRouter(n, { auth: { token: 's3cret' } }));
      const own = express().use('/feed', createFeedRouter(n, { auth: { token: 'other' } }));
      await request(stats).get('/events').expect(401).expect('WWW-Authenticate', /Basic realm=/);
      await request(stats).get('/events').set('Authorization', 'Bearer s3cret').expect(200, { events: [] });
      await request(own).get('/feed').set('Authorization', 'Bearer s3cret').expect(401);
      await request(own).get('/feed?limit=5').set('Authorization', 'Bearer other').expect(200, { events: [] });
    } finally {
      await n.close();
    }
  });
});

describe('GET /events', () => {
  it('answers every emitted event, oldest first, a page at a time, with the cursor of the next', async () => {
    const s = await start();
    await s.emit('manifest-push', 5);
    await s.emit('blob-push', 2);
    const all: Event[] = [];
    let cursor: string | undefined;
    const pages: number[] = [];
    for (;;) {
      const { status, body } = await page(s, `limit=3${cursor ? `&cursor=${cursor}` : ''}`);
      expect(status).toBe(200);
      if (body.events.length === 0) {
        expect(body.cursor).toBe(cursor);
        break;
      }
      pages.push(body.events.length);
      all.push(...body.events);
      expect(body.cursor).toBe(body.events[body.events.length - 1].id);
      cursor = body.cursor;
    }
    expect(pages).toEqual([3, 3, 1]);
    expect(all.map((e) => eventTopic(e))).toEqual([...Array(5).fill('/manifest/push'), '/blob/push', '/blob/push']);
    expect(all.map((e) => e.target.tag ?? null)).toEqual(['v0', 'v1', 'v2', 'v3', 'v4', null, null]);
    // The kind the bridge recorded comes along: a reader can tell a blob delete from a manifest delete.
    expect(all[5].kind).toBe('blob');
    // Ids are UUIDv7 and the feed's order is theirs.
    expect(all.map((e) => e.id)).toEqual(all.map((e) => e.id).sort());
    expect(all.every((e) => uuidV7Time(e.id) !== undefined)).toBe(true);
  });

  it('records events whatever the endpoints filter, and with no endpoint at all', async () => {
    const s = await start({ endpoints: [{ name: 'pushes', url: 'http://127.0.0.1:9/', include: { topics: ['/manifest/push'] } }] });
    await s.emit('tag-delete');
    const { body } = await page(s, '');
    expect(body.events.map((e) => e.action)).toEqual(['delete']);
    expect(s.notifications.endpoint('pushes').stats.counters.Events).toBe(0);
    const idle = await start();
    await idle.emit('blob-push');
    expect((await page(idle, '')).body.events.map((e) => eventTopic(e))).toEqual(['/blob/push']);
  });

  it('refuses a bad limit, wait, topic, consumer or cursor with 400 naming it', async () => {
    const s = await start();
    await s.emit('manifest-push');
    // An id made after every event of the feed (in a later millisecond), that is none of them.
    await sleep(5);
    const unknown = newEventId();
    const cases: [string, RegExp][] = [
      ['limit=0', /limit must be a whole number from 1 to 1000, got "0"/],
      ['limit=1001', /limit must be/],
      ['limit=ten', /limit must be/],
      ['wait=30', /wait must be a duration with a unit/],
      ['wait=soon', /invalid duration "soon"/],
      ['topic=/manifests/push', /topic "\/manifests\/push": matches no topic/],
      ['topic=manifest', /must be a path/],
      ['consumer=' + encodeURIComponent('a b'), /consumer must be/],
      ['cursor=12', /cursor "12" is not an event id/],
      [`cursor=${unknown}`, /is no event of this feed/],
      ['limit=1&limit=2', /limit may be given once/],
    ];
    for (const [query, error] of cases) {
      const { status, body } = await page(s, query);
      expect({ query, status }).toEqual({ query, status: 400 });
      expect(body.error).toMatch(error);
    }
  });

  it('filters by topic: one, several, a pattern; the cursor moves past the events it skipped', async () => {
    const s = await start();
    await s.emit('manifest-push', 2);
    await s.emit('blob-push');
    await s.emit('manifest-pull');
    await s.emit('tag-delete');
    const topics = async (query: string) => (await page(s, query)).body.events.map((e) => eventTopic(e));
    expect(await topics('topic=/blob/push')).toEqual(['/blob/push']);
    expect(await topics('topic=/blob/push&topic=/tag/delete')).toEqual(['/blob/push', '/tag/delete']);
    expect(await topics('topic=/manifest/*')).toEqual(['/manifest/push', '/manifest/push', '/manifest/pull']);
    expect(await topics('topic=/*/delete')).toEqual(['/tag/delete']);
    // Nothing after the last matching event: the cursor still reaches the end.
    const { body: all } = await page(s, '');
    const { body } = await page(s, 'topic=/blob/push');
    expect(body.cursor).toBe(all.events[all.events.length - 1].id);
  });

  it('long-polls: an empty feed answers when an event is emitted, or when the wait is over', async () => {
    const s = await start();
    const answer = page(s, 'wait=20s');
    await waitFor(() => s.notifications.feed!.waiting === 1);
    await s.emit('manifest-push');
    const { body } = await answer;
    expect(body.events.map((e) => e.action)).toEqual(['push']);
    // After the cursor and with a topic that nothing matches, the wait runs out.
    const { status, body: empty } = await page(s, `cursor=${body.cursor}&wait=150ms&topic=/blob/*`);
    expect(status).toBe(200);
    expect(empty).toEqual({ events: [], cursor: body.cursor });
    expect(s.notifications.feed!.waiting).toBe(0);
  });

  it('a long poll with a topic wakes for a matching event, not for others', async () => {
    const s = await start();
    await s.emit('manifest-pull');
    const answer = page(s, 'wait=20s&topic=/blob/push');
    await waitFor(() => s.notifications.feed!.waiting === 1);
    await s.emit('manifest-pull');
    await sleep(50);
    await s.emit('blob-push');
    const { body } = await answer;
    expect(body.events.map((e) => eventTopic(e))).toEqual(['/blob/push']);
  });

  it('answers 410 with the oldest cursor for a cursor past the retention window', async () => {
    const s = await start({ log: { events: 3 } });
    await s.emit('manifest-push');
    const first = (await page(s, '')).body.events[0].id;
    await s.emit('blob-push', 4);
    const kept = (await page(s, '')).body.events;
    expect(kept).toHaveLength(3);
    const { status, body } = await page(s, `cursor=${first}`);
    expect(status).toBe(410);
    expect(body.oldest).toBe(kept[0].id);
    expect(body.error).toMatch(/older than the oldest event the feed keeps/);
    // An empty cursor starts again from the oldest kept.
    expect((await page(s, 'cursor=')).body.events.map((e) => e.id)).toEqual(kept.map((e) => e.id));
  });

  it('answers 410 for a cursor whose time is past the retention window', async () => {
    const s = await start({ log: { retention: '300ms' } });
    await s.emit('manifest-push');
    const first = (await page(s, '')).body.events[0].id;
    await sleep(350);
    const { status, body } = await page(s, `cursor=${first}`);
    expect(status).toBe(410);
    expect(body.oldest).toBeNull();
  });

  it('keeps a named consumer\'s position: acknowledged by the cursor of its next request', async () => {
    const s = await start();
    await s.emit('manifest-push', 4);
    const one = await page(s, 'consumer=scanner&limit=2');
    expect(one.body.events.map((e) => e.target.tag)).toEqual(['v0', 'v1']);
    // Not acknowledged yet: asked again without a cursor, the same page comes.
    expect((await page(s, 'consumer=scanner&limit=2')).body.events.map((e) => e.target.tag)).toEqual(['v0', 'v1']);
    const two = await page(s, `consumer=scanner&limit=2&cursor=${one.body.cursor}`);
    expect(two.body.events.map((e) => e.target.tag)).toEqual(['v2', 'v3']);
    // The cursor of the second request acknowledged the first page.
    expect((await page(s, 'consumer=scanner&limit=2')).body.events.map((e) => e.target.tag)).toEqual(['v2', 'v3']);
    // Another consumer has its own position; an empty cursor forgets one.
    expect((await page(s, 'consumer=other&limit=1')).body.events.map((e) => e.target.tag)).toEqual(['v0']);
    await page(s, 'consumer=scanner&cursor=');
    expect((await page(s, 'consumer=scanner&limit=1')).body.events.map((e) => e.target.tag)).toEqual(['v0']);
  });

  it('streams Server-Sent Events, resumes after Last-Event-ID, and leaves nothing behind when the reader goes', async () => {
    const s = await start();
    await s.emit('manifest-push', 2);
    const frames: string[] = [];
    let req!: http.ClientRequest;
    let res!: http.IncomingMessage;
    const open = (lastEventId?: string, query = '') =>
      new Promise<void>((resolve, reject) => {
        req = http.get(`${s.feedUrl}${query}`, { headers: { accept: 'text/event-stream', ...(lastEventId ? { 'last-event-id': lastEventId } : {}) } }, (r) => {
          res = r;
          r.setEncoding('utf8');
          let rest = '';
          r.on('data', (chunk: string) => {
            const parts = (rest + chunk).split('\n\n');
            rest = parts.pop()!;
            frames.push(...parts);
          });
          resolve();
        });
        req.on('error', reject);
      });
    const events = () =>
      frames
        .filter((f) => f.includes('data: '))
        .map((f) => Object.fromEntries(f.split('\n').map((l) => [l.slice(0, l.indexOf(':')), l.slice(l.indexOf(':') + 2)])));
    await open();
    expect(res.headers['content-type']).toMatch(/^text\/event-stream/);
    await waitFor(() => events().length === 2);
    await s.emit('blob-push');
    await waitFor(() => events().length === 3);
    const got = events();
    expect(got.map((f) => f.event)).toEqual(['/manifest/push', '/manifest/push', '/blob/push']);
    expect(got.map((f) => JSON.parse(f.data).id)).toEqual(got.map((f) => f.id));
    req.destroy();
    await waitFor(() => s.notifications.feed!.waiting === 0);

    // Resumes after the first event, with a topic: the pushes of manifests after it.
    frames.length = 0;
    await s.emit('manifest-push');
    await open(got[0].id, '?topic=/manifest/push');
    await waitFor(() => events().length === 2);
    expect(events().map((f) => JSON.parse(f.data).target.tag)).toEqual(['v1', 'v0']);
    req.destroy();
    await waitFor(() => s.notifications.feed!.waiting === 0);
  });

  it('stops waiting for a long-polling reader that went away', async () => {
    const s = await start();
    const gone = new AbortController();
    const answer = fetch(`${s.feedUrl}?wait=30s`, { signal: gone.signal }).catch((err: Error) => err.name);
    await waitFor(() => s.notifications.feed!.waiting === 1);
    gone.abort();
    expect(await answer).toBe('AbortError');
    await waitFor(() => s.notifications.feed!.waiting === 0);
    // The feed still answers the next reader.
    await s.emit('manifest-push');
    expect((await page(s, 'wait=5s')).body.events).toHaveLength(1);
  });

  it('answers waiting readers when notifications close', async () => {
    const s = await start();
    const answer = page(s, 'wait=30s');
    await waitFor(() => s.notifications.feed!.waiting === 1);
    await s.notifications.close();
    expect((await answer).body.events).toEqual([]);
  });
});
