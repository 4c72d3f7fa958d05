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

// The watched methods, written once for every request: each takes the watch and the
// service it decorates first. A request pays for its views, not for new closures. Each
// reports the operation once it has succeeded; a failure to report goes to `onError`,
// never to the caller.
type Wrapped<S> = {
  [K in keyof S]?: S[K] extends (...args: infer A) => infer R ? (watch: Watch, target: S, ...args: A) => R : never;
};

const MANIFESTS: Wrapped<ManifestService> = {
  async get(w, target, ref) {
    const manifest = await target.get(ref);
    try {
      await w.listener.manifestPulled(w.name, manifest, { tag: ref.tag, digest: manifest.digest });
    } catch (err) {
      w.onError(err as Error, 'manifest pull');
    }
    return manifest;
  },
  async put(w, target, manifest, options) {
    const digest = await target.put(manifest, options);
    try {
      await w.listener.manifestPushed(w.name, manifest, { tag: options?.tag, digest });
    } catch (err) {
      w.onError(err as Error, 'manifest push');
    }
    return digest;
  },
  async delete(w, target, digest) {
    await target.delete(digest);
    try {
      await w.listener.manifestDeleted(w.name, digest);
    } catch (err) {
      w.onError(err as Error, 'manifest delete');
    }
  },
};

const BLOBS: Wrapped<BlobService> = {
  async open(w, target, digest) {
    const blob = await target.open(digest);
    try {
      await w.listener.blobPulled(w.name, blob.descriptor);
    } catch (err) {
      w.onError(err as Error, 'blob pull');
    }
    return blob;
  },
  async commit(w, target, uploadId, digest) {
    const desc = await target.commit(uploadId, digest);
    try {
      await w.listener.blobPushed(w.name, desc);
    } catch (err) {
      w.onError(err as Error, 'blob push');
    }
    return desc;
  },
  async mount(w, target, digest, from) {
    const desc = await target.mount(digest, from);
    try {
      await w.listener.blobMounted(w.name, desc, from);
    } catch (err) {
      w.onError(err as Error, 'blob mount');
    }
    return desc;
  },
  async delete(w, target, digest) {
    await target.delete(digest);
    try {
      await w.listener.blobDeleted(w.name, digest);
    } catch (err) {
      w.onError(err as Error, 'blob delete');
    }
  },
};

const TAGS: Wrapped<TagService> = {
  async untag(w, target, tag) {
    await target.untag(tag);
    try {
      await w.listener.tagDeleted(w.name, tag);
    } catch (err) {
      w.onError(err as Error, 'tag delete');
    }
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
          try {
            await this.watch.listener.repoDeleted(this.watch.name);
          } catch (err) {
            this.watch.onError(err as Error, 'repository delete');
          }
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
