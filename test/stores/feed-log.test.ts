import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { idAt, LogClock, type LogEntry } from '../../lib/stores/delivery-log';
import { SqliteDeliveryLog } from '../../lib/stores/sqlite-delivery-log';
import { RedisDeliveryLog } from '../../lib/stores/redis-delivery-log';
import type { Event } from '../../lib';
import { describeEachLog } from '../helpers/delivery-logs';
import { makeEvent } from '../helpers/events';
import { deletePrefix, describeWithRedis, REDIS_URL, uniquePrefix } from '../helpers/redis';
import { sleep, waitFor } from '../helpers/wait';

const HOUR = 3_600_000;

function feed(seq: number, events: Event[]): LogEntry {
  return { kind: 'feed', events, seq, at: Date.now() };
}

/** The pull feed's part of the delivery log contract, run against each kind. */
describeEachLog('feed log', (open) => {
  const clock = new LogClock();

  it('reads events oldest first after a position, a page at a time', async () => {
    const log = await open();
    const events = Array.from({ length: 5 }, (_, i) => makeEvent(i % 2 ? 'pull' : 'push'));
    await log.write([feed(clock.next(3), events.slice(0, 3))]);
    await log.write([feed(clock.next(2), events.slice(3))]);
    const first = await log.feedRead(undefined, 2, undefined, 100);
    expect(first.events.map((e) => e.id)).toEqual([events[0].id, events[1].id]);
    expect(JSON.parse(first.events[0].body)).toEqual(events[0]);
    expect(first.events.map((e) => e.topic)).toEqual(['/manifest/push', '/manifest/pull']);
    expect(first.last).toEqual({ seq: first.events[1].seq, id: events[1].id });
    const rest = await log.feedRead(first.last!.seq, 10, undefined, 100);
    expect(rest.events.map((e) => e.id)).toEqual(events.slice(2).map((e) => e.id));
    expect(await log.feedRead(rest.last!.seq, 10, undefined, 100)).toEqual({ events: [] });
    expect(await log.feedSeq(events[2].id)).toBe(rest.events[0].seq);
    expect(await log.feedSeq(makeEvent().id)).toBeUndefined();
    const bounds = await log.feedBounds();
    expect(bounds.oldest?.id).toBe(events[0].id);
    expect(bounds.newest?.id).toBe(events[4].id);
  });

  it('gives each event a seq above every one it holds, whatever seq the writer proposed', async () => {
    const log = await open();
    const [a, b, c] = [makeEvent(), makeEvent(), makeEvent()];
    const late = clock.next(); // proposed by a replica that is slow to write
    await log.write([feed(clock.next(), [a]), feed(clock.next(), [b])]);
    await log.write([feed(late, [c])]);
    const all = await log.feedRead(undefined, 10, undefined, 100);
    expect(all.events.map((e) => e.id)).toEqual([a.id, b.id, c.id]);
    // A reader that had read up to b finds c after it.
    const afterB = await log.feedRead(all.events[1].seq, 10, undefined, 100);
    expect(afterB.events.map((e) => e.id)).toEqual([c.id]);
    // An event written twice is kept once.
    await log.write([feed(clock.next(), [a])]);
    expect((await log.feedRead(undefined, 10, undefined, 100)).events).toHaveLength(3);
  });

  it('filters by topic, reading at most `scan` rows, and says where it stopped', async () => {
    const log = await open();
    const pulls = Array.from({ length: 6 }, () => makeEvent('pull'));
    const push = makeEvent('push');
    await log.write([feed(clock.next(7), [...pulls, push])]);
    const topics = new Set(['/manifest/push']);
    const bounded = await log.feedRead(undefined, 10, topics, 4);
    expect(bounded).toEqual({ events: [], last: { seq: expect.any(Number), id: pulls[3].id } });
    const next = await log.feedRead(bounded.last!.seq, 10, topics, 4);
    expect(next.events.map((e) => e.id)).toEqual([push.id]);
    expect(next.last?.id).toBe(push.id);
  });

  it('keeps at most `events` events and only for the retention window', async () => {
    const counted = await open({ events: 3 });
    const events = Array.from({ length: 5 }, () => makeEvent());
    for (const e of events) await counted.write([feed(clock.next(), [e])]);
    expect((await counted.feedRead(undefined, 10, undefined, 100)).events.map((e) => e.id)).toEqual(events.slice(2).map((e) => e.id));
    expect(await counted.feedSeq(events[0].id)).toBeUndefined();
    expect((await counted.feedBounds()).oldest?.id).toBe(events[2].id);

    const aged = await open({ retentionMs: HOUR });
    const [old, fresh] = [makeEvent(), makeEvent()];
    await aged.write([feed(idAt(Date.now() - 2 * HOUR), [old])]);
    await aged.write([feed(clock.next(), [fresh])]);
    await aged.trim();
    expect((await aged.feedRead(undefined, 10, undefined, 100)).events.map((e) => e.id)).toEqual([fresh.id]);
    expect(await aged.feedSeq(old.id)).toBeUndefined();
    expect((await aged.feedBounds()).oldest?.id).toBe(fresh.id);
  });

  it('keeps consumers\' cursors, and forgets one on request', async () => {
    const log = await open();
    expect(await log.consumerCursor('scanner')).toBeUndefined();
    await log.setConsumerCursor('scanner', 'c1');
    await log.setConsumerCursor('other', 'c2');
    await log.setConsumerCursor('scanner', 'c3');
    expect(await log.consumerCursor('scanner')).toBe('c3');
    expect(await log.consumerCursor('other')).toBe('c2');
    await log.setConsumerCursor('scanner', undefined);
    expect(await log.consumerCursor('scanner')).toBeUndefined();
  });
});

describe('sqlite', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'feed-log-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('keeps the feed and the consumers in the file, for the next process', async () => {
    const file = path.join(dir, 'kept.db');
    const e = makeEvent();
    const first = new SqliteDeliveryLog({ path: file });
    await first.write([feed(new LogClock().next(), [e])]);
    await first.setConsumerCursor('scanner', e.id);
    await first.close();
    const second = new SqliteDeliveryLog({ path: file });
    try {
      expect((await second.feedRead(undefined, 10, undefined, 100)).events.map((x) => x.id)).toEqual([e.id]);
      expect(await second.consumerCursor('scanner')).toBe(e.id);
    } finally {
      await second.close();
    }
  });
});

describeWithRedis('redis', () => {
  const prefixes: string[] = [];
  afterAll(async () => {
    await Promise.all(prefixes.map(deletePrefix));
  });
  it('tells a watcher on one connection of feed writes made on another', async () => {
    const prefix = uniquePrefix('feedwatch');
    prefixes.push(prefix);
    const [reader, writer] = [new RedisDeliveryLog({ url: REDIS_URL, prefix }), new RedisDeliveryLog({ url: REDIS_URL, prefix })];
    try {
      await Promise.all([reader.open(), writer.open()]);
      let heard = 0;
      const stop = reader.watchFeed(() => heard++);
      // The subscription is made in the background: write until it is heard.
      const clock = new LogClock();
      await waitFor(async () => {
        await writer.write([feed(clock.next(), [makeEvent()])]);
        await sleep(20);
        return heard > 0;
      });
      stop();
      const before = heard;
      await writer.write([feed(clock.next(), [makeEvent()])]);
      await sleep(50);
      expect(heard).toBe(before);
    } finally {
      await Promise.all([reader.close(), writer.close()]);
    }
  });
});
