import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import type { Exchange } from './http-recording-proxy';

/**
 * What a repository holds in the demo's filesystem storage (Distribution's layout):
 * the operations that took effect, whatever the client was told.
 */
export interface Stored {
  /** `<repo> blob <digest>` for each blob linked into the repository. */
  blobs: string[];
  /** `<repo> manifest <digest>` for each manifest revision. */
  manifests: string[];
  /** `<repo> manifest <tag>` for each tag. */
  tags: string[];
}

const list = (dir: string) => (existsSync(dir) ? readdirSync(dir) : []);

export function readStored(root: string, repository: string): Stored {
  const repo = path.join(root, 'repositories', ...repository.split('/'));
  const linked = (dir: string) =>
    list(dir).flatMap((alg) => list(path.join(dir, alg)).filter((hex) => existsSync(path.join(dir, alg, hex, 'link'))).map((hex) => `${alg}:${hex}`));
  return {
    blobs: linked(path.join(repo, '_layers')).map((d) => `${repository} blob ${d}`),
    manifests: linked(path.join(repo, '_manifests', 'revisions')).map((d) => `${repository} manifest ${d}`),
    tags: list(path.join(repo, '_manifests', 'tags'))
      .filter((t) => existsSync(path.join(repo, '_manifests', 'tags', t, 'current', 'link')))
      .map((t) => `${repository} manifest ${t}`),
  };
}

/**
 * The event key (see opKey) of an operation a client made, or undefined for a request that
 * sends no event (GET /v2/, an upload's POST or PATCH). `status` is the answer it got.
 */
export function exchangeKey(x: Pick<Exchange, 'method' | 'url'>): string | undefined {
  const u = new URL(x.url, 'http://x');
  const m = u.pathname.match(/^\/v2\/(.+)\/(blobs|manifests)\/(.+)$/);
  if (!m) return undefined;
  const [, repo, what, rest] = m;
  if (what === 'blobs' && rest.startsWith('uploads/')) {
    if (x.method === 'PUT' && u.searchParams.get('digest')) return `push ${repo} blob ${u.searchParams.get('digest')}`;
    if (x.method === 'POST' && u.searchParams.get('mount')) return `mount ${repo} blob ${u.searchParams.get('mount')}`;
    return undefined;
  }
  const kind = what === 'blobs' ? 'blob' : 'manifest';
  if (x.method === 'PUT' && kind === 'manifest') return `push ${repo} manifest ${decodeURIComponent(rest)}`;
  if (x.method === 'GET' || x.method === 'HEAD') return `pull ${repo} ${kind} ${decodeURIComponent(rest)}`;
  if (x.method === 'DELETE') return `delete ${repo} ${kind} ${decodeURIComponent(rest)}`;
  return undefined;
}
