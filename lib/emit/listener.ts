import type { RepositoryListener } from './bridge';
import type { Repository } from './repository';

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
  const name = repo.name;
  const notify = async (operation: string, emit: () => Promise<void>) => {
    try {
      await emit();
    } catch (err) {
      onError(err as Error, operation);
    }
  };

  const manifests = watch(repo.manifests, {
    async get(target, ref) {
      const manifest = await target.get(ref);
      await notify('manifest pull', () =>
        listener.manifestPulled(name, manifest, { tag: ref.tag, digest: manifest.digest }),
      );
      return manifest;
    },
    async put(target, manifest, options) {
      const digest = await target.put(manifest, options);
      await notify('manifest push', () => listener.manifestPushed(name, manifest, { tag: options?.tag, digest }));
      return digest;
    },
    async delete(target, digest) {
      await target.delete(digest);
      await notify('manifest delete', () => listener.manifestDeleted(name, digest));
    },
  });

  const blobs = watch(repo.blobs, {
    async open(target, digest) {
      const blob = await target.open(digest);
      await notify('blob pull', () => listener.blobPulled(name, blob.descriptor));
      return blob;
    },
    async commit(target, uploadId, digest) {
      const desc = await target.commit(uploadId, digest);
      await notify('blob push', () => listener.blobPushed(name, desc));
      return desc;
    },
    async mount(target, digest, from) {
      const desc = await target.mount(digest, from);
      await notify('blob mount', () => listener.blobMounted(name, desc, from));
      return desc;
    },
    async delete(target, digest) {
      await target.delete(digest);
      await notify('blob delete', () => listener.blobDeleted(name, digest));
    },
  });

  const tags = watch(repo.tags, {
    async untag(target, tag) {
      await target.untag(tag);
      await notify('tag delete', () => listener.tagDeleted(name, tag));
    },
  });

  const overrides: Partial<Repository> = { manifests, blobs, tags };
  if (typeof repo.remove === 'function') {
    overrides.remove = async () => {
      await repo.remove!();
      await notify('repository delete', () => listener.repoDeleted(name));
    };
  }
  return new Proxy(repo, {
    get(target, prop, receiver) {
      if (typeof prop === 'string' && prop in overrides) return overrides[prop as keyof Repository];
      return Reflect.get(target, prop, receiver);
    },
  });
}

type Wrapped<S> = {
  [K in keyof S]?: S[K] extends (...args: infer A) => infer R ? (target: S, ...args: A) => R : never;
};

/** A view of `service` whose listed methods are replaced; all else reaches the original. */
function watch<S extends object>(service: S, wrapped: Wrapped<S>): S {
  return new Proxy(service, {
    get(target, prop, receiver) {
      const replacement = (wrapped as Record<string | symbol, unknown>)[prop];
      if (typeof replacement === 'function') {
        return (...args: unknown[]) => replacement(target, ...args);
      }
      const value = Reflect.get(target, prop, receiver);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}
