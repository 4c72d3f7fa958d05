import { TOPICS, eventTopic, expandTopics, topicMatcher, TopicPatternError } from '../../lib/model/topic';
import { Filter } from '../../lib/deliver/filter';
import { parseNotificationsConfig } from '../../lib/config/load';
import { makeEvent } from '../helpers/events';
import { RecordingSink } from '../helpers/sinks';
import { configFailure } from '../helpers/config-failure';

const blob = (action: 'push' | 'pull' | 'mount' | 'delete') =>
  makeEvent(action, { target: { mediaType: 'application/octet-stream', repository: 'demo/app', digest: 'sha256:' + 'b'.repeat(64), url: 'http://r/v2/demo/app/blobs/sha256:' + 'b'.repeat(64) } });
const tagDelete = () => makeEvent('delete', { target: { repository: 'demo/app', tag: 'v1' } });

describe('topics in containerd\'s shape', () => {
  it('names every kind/action pair once', () => {
    expect(TOPICS).toEqual([
      '/manifest/push', '/manifest/pull', '/manifest/delete',
      '/blob/push', '/blob/pull', '/blob/mount', '/blob/delete',
      '/tag/delete', '/repository/delete',
    ]);
  });

  it('gives an event its topic from its kind and action', () => {
    expect(eventTopic(makeEvent('push'))).toBe('/manifest/push');
    expect(eventTopic(blob('mount'))).toBe('/blob/mount');
    expect(eventTopic(tagDelete())).toBe('/tag/delete');
  });

  it.each([
    [['/manifest/*'], ['/manifest/push', '/manifest/pull', '/manifest/delete']],
    [['/*/delete'], ['/manifest/delete', '/blob/delete', '/tag/delete', '/repository/delete']],
    [['/blob/p*'], ['/blob/push', '/blob/pull']],
    [['/manifest/push', '/tag/delete'], ['/manifest/push', '/tag/delete']],
    [['/**'], [...TOPICS]],
  ])('expands %j', (patterns, topics) => {
    expect([...expandTopics(patterns)].sort()).toEqual([...topics].sort());
  });

  it.each([
    ['/manifests/push', 'matches no topic'],
    ['manifest/push', 'must be a path'],
    ['/manifest', 'matches no topic'],
  ])('refuses %s, naming it and the topics', (pattern, reason) => {
    let err: unknown;
    try {
      expandTopics([pattern]);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(TopicPatternError);
    expect((err as Error).message).toContain(JSON.stringify(pattern));
    expect((err as Error).message).toContain(reason);
    expect((err as Error).message).toContain('/manifest/push');
  });

  it('matches events against patterns', () => {
    const deletes = topicMatcher(['/*/delete']);
    expect(deletes(tagDelete())).toBe(true);
    expect(deletes(makeEvent('delete'))).toBe(true);
    expect(deletes(makeEvent('push'))).toBe(false);
  });

  it('filters an endpoint\'s events by include.topics and ignore.topics', async () => {
    const dst = new RecordingSink();
    const f = new Filter(dst, { include: { topics: ['/manifest/*', '/tag/delete'] }, ignore: { topics: ['/manifest/pull'] } });
    await f.write([makeEvent('push'), makeEvent('pull'), blob('push'), tagDelete(), makeEvent('delete')]);
    expect(dst.events.map((e) => eventTopic(e))).toEqual(['/manifest/push', '/tag/delete', '/manifest/delete']);
  });

  it('reads topics from a Distribution-style config and refuses a typo there', () => {
    const config = parseNotificationsConfig({ endpoints: [{ name: 'a', url: 'http://127.0.0.1:1/', include: { topics: ['/manifest/*'] } }] });
    expect(config.endpoints[0].include.topics).toEqual(['/manifest/*']);
    const err = configFailure(() =>
      parseNotificationsConfig({ endpoints: [{ name: 'a', url: 'http://127.0.0.1:1/', ignore: { topics: ['/manifest/push', '/manifests/pull'] } }] }),
    );
    expect(err.message).toContain('notifications.endpoints[0].ignore.topics[1]');
    expect(err.message).toContain('/manifests/pull');
  });
});
