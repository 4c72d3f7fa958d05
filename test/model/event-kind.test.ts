import { decodeEvent } from '../../lib/codec/envelope';
import type { Event } from '../../lib/model/event';
import { eventKind, eventType } from '../../lib/model/event-kind';
import { loadFixtures } from '../helpers/fixtures';

const fixtureEvents = new Map(loadFixtures().map((f) => [f.name, decodeEvent(f.parsed.events[0])]));
const fixture = (name: string): Event => {
  const e = fixtureEvents.get(name);
  if (!e) throw new Error(`no fixture ${name}`);
  return e;
};

describe('eventKind and eventType', () => {
  test.each([
    ['manifest-push-with-references', 'manifest.push'],
    ['manifest-pull-by-tag', 'manifest.pull'],
    ['manifest-delete', 'manifest.delete'],
    ['blob-push', 'blob.push'],
    ['blob-pull-head', 'blob.pull'],
    ['blob-mount', 'blob.mount'],
    ['tag-delete', 'tag.delete'],
  ])('fixture %s is %s', (name, type) => {
    expect(eventType(fixture(name))).toBe(type);
  });

  test('a target with only a repository is a repository', () => {
    expect(eventKind({ target: { repository: 'demo/app' } })).toBe('repository');
  });

  test('the media type decides when there is no url', () => {
    expect(eventKind({ target: { mediaType: 'application/vnd.docker.distribution.manifest.list.v2+json', digest: 'sha256:1' } })).toBe('manifest');
    expect(eventKind({ target: { mediaType: 'application/octet-stream', digest: 'sha256:1' } })).toBe('blob');
    expect(eventKind({ target: { mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip' } })).toBe('blob');
  });

  test('the url wins over the media type', () => {
    expect(eventKind({ target: { mediaType: 'application/octet-stream', url: 'http://r/v2/a/manifests/sha256:1' } })).toBe('manifest');
  });
});

describe('a recorded kind', () => {
  it('wins over what the target suggests', () => {
    expect(eventKind({ target: { repository: 'demo/app', digest: 'sha256:1' } })).toBe('manifest');
    expect(eventKind({ target: { repository: 'demo/app', digest: 'sha256:1' }, kind: 'blob' })).toBe('blob');
  });
});
