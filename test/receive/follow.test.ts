import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { FeedGoneError, FeedRequestError, followEvents, type Event } from '../../lib';
import { FeedServer } from '../helpers/feed-server';
import { freePort } from '../helpers/registry-process';
import { waitFor } from '../helpers/wait';

describe('followEvents', () => {
  let dir: string;
  const servers: FeedServer[] = [];
  beforeEach(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'follow-'));
  });
  afterEach(async () => {
    await Promise.all(servers.splice(0).map((s) => s.close()));
    rmSync(dir, { recursive: true, force: true });
  });
  const config = () => ({ queue: { type: 'sqlite', path: path.join(dir, 'n.db'), spooldir: path.join(dir, 'spool') }, feed: { enabled: true }, log: { events: 5 } });
  const start = async (port?: number) => {
    const s = await FeedServer.start(config(), { port });
    servers.push(s);
    return s;
  };

  /** Follows in the background, collecting events, until `stop` aborts. */
  function follow(options: Omit<Parameters<typeof followEvents>[0], 'signal'>) {
    const stop = new AbortController();
    const events: Event[] = [];
    const retries: string[] = [];
    const done = (async () => {
      for await (const e of followEvents({ retryMs: 20, onRetry: (err) => retries.push(err.message), ...options, signal: stop.signal })) events.push(e);
    })();
    return { events, retries, stop, done };
  }

  it('reads every event in order, across a restart of the server, and stops on its signal', async () => {
    const port = await freePort();
    let s = await start(port);
    await s.emit('manifest-push', 3);
    const f = follow({ url: s.feedUrl, limit: 2, waitMs: 5000 });
    await waitFor(() => f.events.length === 3);
    await s.close();
    servers.splice(servers.indexOf(s), 1);
    await waitFor(() => f.retries.length > 0);
    s = await start(port);
    await s.emit('blob-push');
    await s.emit('manifest-push', 1);
    await waitFor(() => f.events.length >= 5);
    // Waiting in a long poll: the abort ends the iteration without an error.
    await waitFor(() => s.notifications.feed!.waiting === 1);
    f.stop.abort();
    await f.done;
    expect(f.events.map((e) => `${e.action} ${e.target.tag ?? e.target.mediaType}`)).toEqual([
      'push v0',
      'push v1',
      'push v2',
      'push application/octet-stream',
      'push v0',
    ]);
    expect(f.retries[0]).toMatch(/fetch failed/);
  });

  it('keeps to its topics, and continues as a named consumer where it stopped', async () => {
    const s = await start();
    await s.emit('manifest-pull', 2);
    await s.emit('manifest-push', 2);
    const first = follow({ url: s.feedUrl, consumer: 'scanner', topics: ['/manifest/push'], limit: 1, waitMs: 5000 });
    await waitFor(() => first.events.length === 2);
    // Wait until the request after the last event has acknowledged it.
    await waitFor(() => s.notifications.feed!.waiting === 1);
    first.stop.abort();
    await first.done;
    await s.emit('manifest-push', 1, 'other/app');
    const second = follow({ url: s.feedUrl, consumer: 'scanner', topics: ['/manifest/*'], waitMs: 5000 });
    await waitFor(() => second.events.length === 1);
    second.stop.abort();
    await second.done;
    expect(first.events.map((e) => e.target.tag)).toEqual(['v0', 'v1']);
    expect(second.events.map((e) => e.target.repository)).toEqual(['other/app']);
  });

  it('throws FeedGoneError with the oldest cursor when it fell behind, and FeedRequestError for a bad topic', async () => {
    const s = await start();
    await s.emit('manifest-push');
    const [gone] = ((await (await fetch(s.feedUrl)).json()) as { events: Event[] }).events;
    await s.emit('manifest-push', 5);
    const oldest = ((await (await fetch(s.feedUrl)).json()) as { events: Event[] }).events[0].id;
    const read = async (options: Partial<Parameters<typeof followEvents>[0]>) => {
      for await (const _ of followEvents({ url: s.feedUrl, waitMs: 0, ...options })) void _;
    };
    const err = await read({ cursor: gone.id }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FeedGoneError);
    expect(err).toMatchObject({ cursor: gone.id, oldest });
    await expect(read({ topics: ['/manifests/push'] })).rejects.toThrow(FeedRequestError);
    await expect(read({ topics: ['/manifests/push'] })).rejects.toThrow(/feed answered 400: topic "\/manifests\/push": matches no topic/);
  });
});
