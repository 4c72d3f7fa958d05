import path from 'node:path';
import type { Event } from '../../lib';
import { tinyImage, type TinyImage } from '../../demo-registry/sample-image';
import { RegistryProcess } from './registry-process';

/** An endpoint's Metrics in /debug/vars (Distribution's expvar shape). */
export interface EndpointMetrics {
  Pending: number;
  Events: number;
  Successes: number;
  Failures: number;
  Errors: number;
  Spooled: number;
  State: string;
  [k: string]: unknown;
}

/** A demo registry process with its debug address. */
export interface Demo {
  proc: RegistryProcess;
  url: string;
  debugUrl: string;
  /** performance.now() when it printed its listening line. */
  startedAt: number;
}

/** A config.yml for the demo: filesystem storage under `root`, a debug address, one endpoint `hook`. */
export function demoConfig(options: { root: string; queue: object; endpointUrl: string; endpoint?: object }): object {
  return {
    version: 0.1,
    http: { addr: '127.0.0.1:0', debug: { addr: '127.0.0.1:0' } },
    storage: { filesystem: { rootdirectory: options.root }, delete: { enabled: true } },
    notifications: {
      queue: options.queue,
      endpoints: [{ name: 'hook', url: options.endpointUrl, threshold: 1, backoff: '50ms', timeout: '500ms', ...options.endpoint }],
    },
  };
}

/** Starts the demo as a real process (a single node process: SIGKILL reaches it). */
export async function startDemo(dir: string, config: object, name = 'config.yml'): Promise<Demo> {
  const proc = await RegistryProcess.start(dir, config, name);
  const line = proc.stderr.find((l) => l.includes('debug on '));
  const debugUrl = line?.match(/debug on (http:\/\/\S+)/)?.[1];
  if (!debugUrl) throw new Error(`no debug address in the demo's output:\n${proc.stderr.join('\n')}`);
  return { proc, url: proc.url, debugUrl, startedAt: performance.now() };
}

/** The metrics of endpoint `hook` in /debug/vars. */
export async function hookMetrics(demo: Demo): Promise<EndpointMetrics> {
  const res = await fetch(`${demo.debugUrl}/debug/vars`);
  const body = (await res.json()) as { registry: { notifications: { endpoints: Array<{ name: string; Metrics: EndpointMetrics }> } } };
  const hook = body.registry.notifications.endpoints.find((e) => e.name === 'hook');
  if (!hook) throw new Error(`no endpoint hook in /debug/vars: ${JSON.stringify(body)}`);
  return hook.Metrics;
}

/** PUTs the image's manifest under `tag` (its blobs must be there); resolves with the status. */
export async function putTag(base: string, repository: string, image: TinyImage, tag: string): Promise<number> {
  const res = await fetch(`${base}/v2/${repository}/manifests/${tag}`, {
    method: 'PUT',
    headers: { 'Content-Type': image.manifest.mediaType },
    body: image.manifest.bytes,
  });
  await res.arrayBuffer();
  return res.status;
}

/** The image the fault tests push: tiny, with a fixed content so every run has the same digests. */
export const FAULT_IMAGE = tinyImage({ layers: [{ 'fault.txt': 'fault injection\n' }] });

/** What identifies the operation an event reports: action, kind of target and tag or digest. */
export function opKey(e: Event): string {
  const kind = e.target.mediaType === 'application/octet-stream' ? 'blob' : 'manifest';
  return `${e.action} ${e.target.repository} ${kind} ${e.target.tag ?? e.target.digest}`;
}

/** What an event is about, as stored items are named (see readStored): `<repo> <kind> <digest>`, and `<repo> manifest <tag>` for a tag. */
export function aboutKeys(e: Event): string[] {
  const kind = e.target.mediaType === 'application/octet-stream' ? 'blob' : 'manifest';
  const keys: string[] = [];
  if (e.target.digest) keys.push(`${e.target.repository} ${kind} ${e.target.digest}`);
  if (e.target.tag) keys.push(`${e.target.repository} manifest ${e.target.tag}`);
  return keys;
}

export const tagKey = (repository: string, tag: string) => `push ${repository} manifest ${tag}`;
export const blobKey = (repository: string, digest: string) => `push ${repository} blob ${digest}`;

/** A path in the temporary directory of a test. */
export const under = (dir: string, ...parts: string[]) => path.join(dir, ...parts);
