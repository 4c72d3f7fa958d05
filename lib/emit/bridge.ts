import {
  BLOB_MEDIA_TYPE,
  eventTimestamp,
  newEventId,
  type ActorRecord,
  type Descriptor,
  type Event,
  type EventAction,
  type EventKind,
  type RequestRecord,
  type SourceRecord,
  type Target,
} from '../model/event';
import { describeManifest } from '../model/manifest';
import type { Manifest } from '../model/manifest';
import { writeTo, type Sink } from '../deliver/sink';

/** What happened to a repository; the Listener calls these after each operation succeeds. */
export interface RepositoryListener {
  manifestPushed(repo: string, manifest: Manifest, options?: { tag?: string; digest?: string }): Promise<void>;
  manifestPulled(repo: string, manifest: Manifest, options?: { tag?: string; digest?: string }): Promise<void>;
  manifestDeleted(repo: string, digest: string): Promise<void>;
  blobPushed(repo: string, desc: Descriptor): Promise<void>;
  blobPulled(repo: string, desc: Descriptor): Promise<void>;
  blobMounted(repo: string, desc: Descriptor, fromRepo: string): Promise<void>;
  blobDeleted(repo: string, digest: string): Promise<void>;
  tagDeleted(repo: string, tag: string): Promise<void>;
  repoDeleted(repo: string): Promise<void>;
}

/** Builds the digest URLs events carry. */
export interface UrlBuilder {
  manifestUrl(repo: string, digest: string): string;
  blobUrl(repo: string, digest: string): string;
}

/**
 * A UrlBuilder for a fixed base such as `https://registry.example.com` (no trailing slash
 * needed). Each kind of URL keeps the last one it built: a registry under pull load names
 * the same few manifests over and over, and the events the logs keep then share one string.
 */
export function urlBuilderFor(base: string): UrlBuilder {
  const root = base.replace(/\/+$/, '');
  return { manifestUrl: lastUrlOf(`${root}/v2/`, '/manifests/'), blobUrl: lastUrlOf(`${root}/v2/`, '/blobs/') };
}

/** `head + repo + middle + digest`, the last one built kept for the same repository and digest. */
function lastUrlOf(head: string, middle: string): (repo: string, digest: string) => string {
  let lastRepo = '';
  let lastDigest = '';
  let lastUrl = '';
  return (repo, digest) => {
    if (repo !== lastRepo || digest !== lastDigest) {
      lastRepo = repo;
      lastDigest = digest;
      lastUrl = head + repo + middle + digest;
    }
    return lastUrl;
  };
}

export interface BridgeOptions {
  sink: Sink;
  urls: UrlBuilder;
  source: SourceRecord;
  actor: ActorRecord;
  request: RequestRecord;
  /** Add the manifest's references to manifest events (`events.includereferences`). @default false */
  includeReferences?: boolean;
}

/**
 * Turns repository operations into Distribution events, stamped with one request's
 * actor, source and request records, and writes each to a sink.
 */
export class Bridge implements RepositoryListener {
  constructor(private readonly options: BridgeOptions) {}

  // Not async: each returns the sink's write as it is, with no promise of its own around
  // it; an event that cannot be built rejects all the same.

  manifestPushed(repo: string, manifest: Manifest, options: { tag?: string; digest?: string } = {}): Promise<void> {
    try {
      return this.write(this.manifestEvent('push', repo, manifest, options));
    } catch (err) {
      return Promise.reject(err);
    }
  }

  manifestPulled(repo: string, manifest: Manifest, options: { tag?: string; digest?: string } = {}): Promise<void> {
    try {
      return this.write(this.manifestEvent('pull', repo, manifest, options));
    } catch (err) {
      return Promise.reject(err);
    }
  }

  manifestDeleted(repo: string, digest: string): Promise<void> {
    return this.write(this.event('delete', { digest, repository: repo }, 'manifest'));
  }

  blobPushed(repo: string, desc: Descriptor): Promise<void> {
    try {
      return this.write(this.blobEvent('push', repo, desc));
    } catch (err) {
      return Promise.reject(err);
    }
  }

  blobPulled(repo: string, desc: Descriptor): Promise<void> {
    try {
      return this.write(this.blobEvent('pull', repo, desc));
    } catch (err) {
      return Promise.reject(err);
    }
  }

  blobMounted(repo: string, desc: Descriptor, fromRepo: string): Promise<void> {
    try {
      const event = this.blobEvent('mount', repo, desc);
      event.target.fromRepository = fromRepo;
      return this.write(event);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  blobDeleted(repo: string, digest: string): Promise<void> {
    return this.write(this.event('delete', { digest, repository: repo }, 'blob'));
  }

  tagDeleted(repo: string, tag: string): Promise<void> {
    return this.write(this.event('delete', { repository: repo, tag }, 'tag'));
  }

  repoDeleted(repo: string): Promise<void> {
    return this.write(this.event('delete', { repository: repo }, 'repository'));
  }

  /** Builds a manifest event without writing it (exposed for benchmarks and tests). */
  manifestEvent(
    action: EventAction,
    repo: string,
    manifest: Manifest,
    options: { tag?: string; digest?: string } = {},
  ): Event {
    const described = describeManifest(manifest, options.digest, this.options.includeReferences ?? false);
    const target: Target = {
      mediaType: manifest.mediaType,
      size: described.size,
      digest: described.digest,
      length: described.size,
      repository: repo,
      url: this.options.urls.manifestUrl(repo, described.digest),
    };
    if (options.tag) target.tag = options.tag;
    if (this.options.includeReferences && described.references.length > 0) target.references = described.references;
    return this.event(action, target, 'manifest');
  }

  private blobEvent(action: EventAction, repo: string, desc: Descriptor): Event {
    if (!desc.digest) throw new TypeError(`blob ${action} event needs a digest`);
    return this.event(
      action,
      {
        ...desc,
        mediaType: desc.mediaType || BLOB_MEDIA_TYPE,
        length: desc.size,
        repository: repo,
        url: this.options.urls.blobUrl(repo, desc.digest),
      },
      'blob',
    );
  }

  /** The kind is recorded because the target alone does not tell a blob delete from a manifest delete. */
  private event(action: EventAction, target: Target, kind: EventKind): Event {
    const { request, actor, source } = this.options;
    return { id: newEventId(), timestamp: eventTimestamp(), action, target, request, actor, source, kind };
  }

  private write(event: Event): Promise<void> {
    return writeTo(this.options.sink, [event]);
  }
}
