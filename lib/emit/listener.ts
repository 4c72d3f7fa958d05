import type { RepositoryListener } from './bridge';
import type { BlobService, ManifestService, Repository, TagService } from './repository';

/** Where the Listener reports a notification that could not be written. */
export type NotificationErrorHandler = (err: Error, operation: string) => void;

const defaultOnError: NotificationErrorHandler = (err, operation) => {
  console.error(`notifications: ${operation}: event not written: ${err.message}`);
};

/**
 * Decorates a repository so that each operation, once it has succeeded, is reported to
 * the listener. The operation's result is returned unchanged; a notification that fails
 * is handed to `onError` and never fails the operation. Methods the listener does not
 * watch (uploads, listings, anything the storage adds) pass through untouched.
 */
export function listenRepository<R extends Repository>(
  repo: R,
  listener: RepositoryListener,
  onError: NotificationErrorHandler = defaultOnError,
): R {
  return new Proxy(repo, new RepositoryView<R>({ name: repo.name, listener, onError }));
}

/** What one decorated repository reports, and to whom; shared by its views. */
interface Watch {
  readonly name: string;
  readonly listener: RepositoryListener;
  readonly onError: NotificationErrorHandler;
}

/** Reports one operation that succeeded; a failure goes to `onError`, never to the caller. */
async function notify(watch: Watch, operation: string, emit: (listener: RepositoryListener) => Promise<void>): Promise<void> {
  try {
    await emit(watch.listener);
  } catch (err) {
    watch.onError(err as Error, operation);
  }
}

// The watched methods, written once for every request: each takes the watch and the
// service it decorates first. A request pays for its views, not for new closures.
type Wrapped<S> = {
  [K in keyof S]?: S[K] extends (...args: infer A) => infer R ? (watch: Watch, target: S, ...args: A) => R : never;
};

const MANIFESTS: Wrapped<ManifestService> = {
  async get(w, target, ref) {
    const manifest = await target.get(ref);
    await notify(w, 'manifest pull', (l) => l.manifestPulled(w.name, manifest, { tag: ref.tag, digest: manifest.digest }));
    return manifest;
  },
  async put(w, target, manifest, options) {
    const digest = await target.put(manifest, options);
    await notify(w, 'manifest push', (l) => l.manifestPushed(w.name, manifest, { tag: options?.tag, digest }));
    return digest;
  },
  async delete(w, target, digest) {
    await target.delete(digest);
    await notify(w, 'manifest delete', (l) => l.manifestDeleted(w.name, digest));
  },
};

const BLOBS: Wrapped<BlobService> = {
  async open(w, target, digest) {
    const blob = await target.open(digest);
    await notify(w, 'blob pull', (l) => l.blobPulled(w.name, blob.descriptor));
    return blob;
  },
  async commit(w, target, uploadId, digest) {
    const desc = await target.commit(uploadId, digest);
    await notify(w, 'blob push', (l) => l.blobPushed(w.name, desc));
    return desc;
  },
  async mount(w, target, digest, from) {
    const desc = await target.mount(digest, from);
    await notify(w, 'blob mount', (l) => l.blobMounted(w.name, desc, from));
    return desc;
  },
  async delete(w, target, digest) {
    await target.delete(digest);
    await notify(w, 'blob delete', (l) => l.blobDeleted(w.name, digest));
  },
};

const TAGS: Wrapped<TagService> = {
  async untag(w, target, tag) {
    await target.untag(tag);
    await notify(w, 'tag delete', (l) => l.tagDeleted(w.name, tag));
  },
};

/** The repository as the caller sees it: its services decorated (made on first use), `remove` reported. */
class RepositoryView<R extends Repository> implements ProxyHandler<R> {
  private manifests?: ManifestService;
  private blobs?: BlobService;
  private tags?: TagService;
  private remove?: () => Promise<void>;

  constructor(private readonly watch: Watch) {}

  get(target: R, prop: string | symbol, receiver: unknown): unknown {
    switch (prop) {
      case 'manifests':
        return (this.manifests ??= new Proxy(target.manifests, new ServiceView(this.watch, MANIFESTS)));
      case 'blobs':
        return (this.blobs ??= new Proxy(target.blobs, new ServiceView(this.watch, BLOBS)));
      case 'tags':
        return (this.tags ??= new Proxy(target.tags, new ServiceView(this.watch, TAGS)));
      case 'remove':
        if (typeof target.remove !== 'function') break;
        return (this.remove ??= async () => {
          await target.remove!();
          await notify(this.watch, 'repository delete', (l) => l.repoDeleted(this.watch.name));
        });
    }
    return Reflect.get(target, prop, receiver);
  }
}

/** A view of a service whose watched methods report; all else reaches the original. */
class ServiceView<S extends object> implements ProxyHandler<S> {
  constructor(
    private readonly watch: Watch,
    private readonly wrapped: Wrapped<S>,
  ) {}

  get(target: S, prop: string | symbol, receiver: unknown): unknown {
    const replacement = Object.hasOwn(this.wrapped, prop) ? (this.wrapped as Record<string | symbol, unknown>)[prop] : undefined;
    if (typeof replacement === 'function') {
      const watch = this.watch;
      return (...args: unknown[]) => replacement(watch, target, ...args);
    }
    const value = Reflect.get(target, prop, receiver);
    return typeof value === 'function' ? value.bind(target) : value;
  }
}
