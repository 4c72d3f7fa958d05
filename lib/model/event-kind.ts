import { BLOB_MEDIA_TYPE, type Event, type EventAction, type EventKind } from './event';
import { MANIFEST_MEDIA_TYPES } from './manifest';

/** `<kind>.<action>`; only the combinations in `EVENT_TYPES` occur in practice. */
export type EventType = `${EventKind}.${EventAction}`;

/** The kind/action pairs a Distribution-compatible registry emits. */
export const EVENT_TYPES = [
  'manifest.push',
  'manifest.pull',
  'manifest.delete',
  'blob.push',
  'blob.pull',
  'blob.mount',
  'blob.delete',
  'tag.delete',
  'repository.delete',
] as const satisfies readonly EventType[];
export type KnownEventType = (typeof EVENT_TYPES)[number];

const MANIFEST_TYPES = new Set<string>([
  ...Object.values(MANIFEST_MEDIA_TYPES),
  'application/vnd.docker.distribution.manifest.v1+json',
  'application/vnd.docker.distribution.manifest.v1+prettyjws',
  'application/vnd.oci.artifact.manifest.v1+json',
]);

/**
 * What the event is about. The kind its producer recorded wins (our Bridge records it on
 * every event); otherwise it is read from the target: the URL (`/manifests/` or
 * `/blobs/`), then the media type. A bare `{repository, digest}` target from another
 * registry is a manifest or a blob delete that Distribution's wire format does not tell
 * apart; it is taken as `manifest`, the common case.
 */
export function eventKind(event: Pick<Event, 'target'> & { kind?: EventKind }): EventKind {
  if (event.kind) return event.kind;
  const t = event.target ?? {};
  if (t.url?.includes('/manifests/')) return 'manifest';
  if (t.url?.includes('/blobs/')) return 'blob';
  if (t.mediaType === BLOB_MEDIA_TYPE) return 'blob';
  // Layer and config types are blobs; anything naming a manifest or an index is a manifest.
  if (t.mediaType) return MANIFEST_TYPES.has(t.mediaType) || /manifest|index/.test(t.mediaType) ? 'manifest' : 'blob';
  if (t.digest) return 'manifest';
  if (t.tag) return 'tag';
  return 'repository';
}

/** `<kind>.<action>`, e.g. `manifest.push`; the key of a receiver's `on` handlers. */
export function eventType(event: Pick<Event, 'target' | 'action'> & { kind?: EventKind }): EventType {
  return `${eventKind(event)}.${event.action}`;
}
