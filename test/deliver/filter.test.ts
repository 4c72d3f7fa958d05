import { Filter, type MatchRules } from '../../lib/deliver/filter';
import { globToRegExp } from '../../lib/deliver/glob';
import type { EventAction } from '../../lib';
import { makeEvent } from '../helpers/events';
import { RecordingSink } from '../helpers/sinks';

const MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const LAYER = 'application/octet-stream';

// [case, filter options, event media type, action, passes]
const table: Array<[string, MatchRules, string | undefined, EventAction, boolean]> = [
  ['nothing ignored', {}, MANIFEST, 'push', true],
  ['media type ignored', { mediaTypes: [LAYER] }, LAYER, 'push', false],
  ['other media type passes', { mediaTypes: [LAYER] }, MANIFEST, 'push', true],
  ['action ignored', { actions: ['pull'] }, MANIFEST, 'pull', false],
  ['other action passes', { actions: ['pull'] }, MANIFEST, 'push', true],
  ['actions ignored with an empty media type list', { mediaTypes: [], actions: ['pull', 'mount'] }, LAYER, 'mount', false],
  ['both lists, media type matches', { mediaTypes: [LAYER], actions: ['delete'] }, LAYER, 'push', false],
  ['both lists, action matches', { mediaTypes: [LAYER], actions: ['delete'] }, MANIFEST, 'delete', false],
  ['both lists, neither matches', { mediaTypes: [LAYER], actions: ['delete'] }, MANIFEST, 'push', true],
  ['delete events have no media type', { mediaTypes: [LAYER] }, undefined, 'delete', true],
];

describe('Filter: Distribution\'s ignore lists', () => {
  it.each(table)('%s', async (_case, ignore, mediaType, action, passes) => {
    const dst = new RecordingSink();
    const f = new Filter(dst, { ignore });
    const event = makeEvent(action);
    if (mediaType === undefined) delete event.target.mediaType;
    else event.target.mediaType = mediaType;
    await f.write([event]);
    expect(dst.events).toHaveLength(passes ? 1 : 0);
    expect(f.accepts(event)).toBe(passes);
  });

  it('with no list to consult, passes each write on as it came, and an empty one not at all', async () => {
    const writes: unknown[] = [];
    const f = new Filter({ write: async (events) => void writes.push(events), close: async () => undefined });
    const events = [makeEvent('push'), makeEvent('pull')];
    await f.write(events);
    await f.write([]);
    expect(writes).toHaveLength(1);
    expect(writes[0]).toBe(events);
    await f.close();
    await expect(f.write(events)).rejects.toThrow('filter: sink is closed');
  });

  it('passes the kept events of a mixed write in one write', async () => {
    const dst = new RecordingSink();
    const f = new Filter(dst, { ignore: { actions: ['pull'] } });
    await f.write([makeEvent('push'), makeEvent('pull'), makeEvent('delete')]);
    expect(dst.writes.map((w) => w.map((e) => e.action))).toEqual([['push', 'delete']]);
  });
});

function eventAt(repository: string, tag: string | undefined, action: EventAction = 'push', kind: 'manifest' | 'blob' = 'manifest') {
  const e = makeEvent(action);
  e.target.repository = repository;
  e.target.url = `http://r/v2/${repository}/${kind === 'manifest' ? 'manifests' : 'blobs'}/${e.target.digest}`;
  if (tag === undefined) delete e.target.tag;
  else e.target.tag = tag;
  return e;
}

describe('Filter: include and finer ignore rules', () => {
  it.each<[string, { include?: MatchRules; ignore?: MatchRules }, ReturnType<typeof eventAt>, boolean]>([
    ['repository glob * stays within a path segment', { include: { repositories: ['library/*'] } }, eventAt('library/nginx', 'v1'), true],
    ['repository glob * does not cross /', { include: { repositories: ['library/*'] } }, eventAt('library/a/b', 'v1'), false],
    ['repository glob ** crosses /', { include: { repositories: ['team/**'] } }, eventAt('team/a/b/c', 'v1'), true],
    ['tag pattern matches', { include: { tags: ['v*'] } }, eventAt('r', 'v1.2'), true],
    ['tag pattern misses', { include: { tags: ['v*'] } }, eventAt('r', 'latest'), false],
    ['an event without a tag misses an include tag list', { include: { tags: ['*'] } }, eventAt('r', undefined), false],
    ['an event without a tag is not ignored by a tag list', { ignore: { tags: ['*'] } }, eventAt('r', undefined), true],
    ['include kinds: manifest passes', { include: { kinds: ['manifest'] } }, eventAt('r', 'v1'), true],
    ['include kinds: blob is dropped', { include: { kinds: ['manifest'] } }, eventAt('r', undefined, 'push', 'blob'), false],
    ['every include list must match', { include: { repositories: ['r'], actions: ['push'] } }, eventAt('r', 'v1', 'pull'), false],
    ['ignore wins over include', { include: { repositories: ['**'] }, ignore: { repositories: ['secret/*'] } }, eventAt('secret/x', 'v1'), false],
    ['ignore by repository', { ignore: { repositories: ['tmp/**'] } }, eventAt('tmp/a', 'v1'), false],
  ])('%s', (_case, options, event, passes) => {
    expect(new Filter(new RecordingSink(), options).accepts(event)).toBe(passes);
  });

  it('compiles globs that match whole names, with regex characters taken literally', () => {
    expect(globToRegExp('a.b/*').test('a.b/c')).toBe(true);
    expect(globToRegExp('a.b/*').test('axb/c')).toBe(false);
    expect(globToRegExp('v?').test('v1')).toBe(true);
    expect(globToRegExp('v?').test('v12')).toBe(false);
    expect(globToRegExp('a/**/b').test('a/b')).toBe(true);
    expect(globToRegExp('a/**/b').test('a/x/y/b')).toBe(true);
    expect(globToRegExp('(x)+').test('(x)+')).toBe(true);
  });
});
