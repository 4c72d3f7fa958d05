// The reference figures, measured on Debian's Go registry (`docker-registry`, Distribution
// 2.8.2) on this machine: (a) how fast it drains a backlog of events once its endpoint
// comes back, and (b) manifest GETs per second with notifications off and on.
// Skipped, with a printed note, when the binary is not installed.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, openSync, closeSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { stringify } from 'yaml';
import { pushImageOverHttp, type PushedImage } from '../demo-registry/sample-image';
import { autocannon, freePort, getJson, processTreeCpuMs, startChild, stopWithin, waitUntil, type Result } from './util';

export const GO_REGISTRY = process.env.BENCH_GO_REGISTRY ?? '/usr/bin/docker-registry';
/** Manifest HEADs sent while the endpoint is down; each is one pull event. */
const BACKLOG = Number(process.env.BENCH_BACKLOG_EVENTS ?? 20_000);
/** Length of each autocannon run of manifest GETs, in seconds. */
export const GET_SECONDS = Number(process.env.BENCH_GET_SECONDS ?? 5);
/** Runs per configuration; the median is reported. */
export const GET_ROUNDS = Number(process.env.BENCH_GET_ROUNDS ?? 5);
export const GET_CONNECTIONS = 10;
/** Pushing the tiny image emits this many events: two blobs and the manifest. */
const PUSH_EVENTS = 3;
/** Longest wait for the backlog to drain; the suite fails rather than hang. */
const DRAIN_TIMEOUT_MS = 150_000;

/** A registry under test, running in its own process. */
export interface RegistryProcess {
  /** e.g. `http://127.0.0.1:41234` */
  readonly url: string;
  /** Its process id, to read its CPU time. */
  readonly pid: number;
  /** Stops the process (SIGKILL when SIGTERM is not enough). */
  stop(): Promise<void>;
}

/** Where a registry keeps its files and, when notifications are on, where it sends them. */
export interface RegistryStartOptions {
  rootDir: string;
  /** Notifications go to this URL; none when unset (notifications off). */
  endpointUrl?: string;
  /** Distribution's `threshold`. @default 10 */
  threshold?: number;
  /** Distribution's `backoff`, as a duration string. @default '1s' */
  backoff?: string;
  /** More fields of the endpoint, e.g. our `maxevents`. @default {} */
  endpointFields?: Record<string, unknown>;
}

export type StartRegistry = (options: RegistryStartOptions) => Promise<RegistryProcess>;

/** A Distribution-style config.yml for a registry on 127.0.0.1:`port`. */
export function registryConfig(port: number, options: RegistryStartOptions, extra: Record<string, unknown> = {}): string {
  const config: Record<string, unknown> = {
    version: 0.1,
    ...extra,
    http: { addr: `127.0.0.1:${port}` },
    storage: { filesystem: { rootdirectory: options.rootDir }, delete: { enabled: true } },
  };
  if (options.endpointUrl) {
    config.notifications = {
      endpoints: [
        {
          name: 'bench',
          url: options.endpointUrl,
          timeout: '1s',
          threshold: options.threshold ?? 10,
          backoff: options.backoff ?? '1s',
          ...options.endpointFields,
        },
      ],
    };
  }
  return stringify(config);
}

/** Polls `GET /v2/` until the registry answers 200, or fails when the process exits first. */
export async function waitForRegistry(url: string, child: ChildProcess, logFile?: string): Promise<void> {
  await waitUntil(
    async () => {
      if (child.exitCode !== null || child.signalCode !== null) {
        const log = logFile && existsSync(logFile) ? readFileSync(logFile, 'utf8').slice(-1000) : '';
        throw new Error(`registry exited with ${child.exitCode ?? child.signalCode} before answering ${url}/v2/\n${log}`);
      }
      try {
        const res = await fetch(`${url}/v2/`);
        await res.arrayBuffer();
        return res.status === 200;
      } catch {
        return false;
      }
    },
    `${url}/v2/ to answer 200`,
    30_000,
    50,
  );
}

/** Starts the Go registry with a temporary config; its log goes to a file beside the config. */
export const startGoRegistry: StartRegistry = async (options) => {
  const port = await freePort();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'bench-go-registry-'));
  const configFile = path.join(dir, 'config.yml');
  // Access logs would cost the Go registry as much as the requests being measured.
  writeFileSync(configFile, registryConfig(port, options, { log: { level: 'error', accesslog: { disabled: true } } }));
  const logFile = path.join(dir, 'registry.log');
  const fd = openSync(logFile, 'w');
  const child = spawn(GO_REGISTRY, ['serve', configFile], { stdio: ['ignore', fd, fd] });
  closeSync(fd);
  const url = `http://127.0.0.1:${port}`;
  const stop = async () => {
    await stopWithin(child, 5000);
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await waitForRegistry(url, child, logFile);
  } catch (err) {
    await stop();
    throw err;
  }
  return { url, pid: child.pid!, stop };
};

/** What the counting receiver has counted since it started. */
export interface ReceiverCount {
  events: number;
  /** POSTs (envelopes) received. */
  requests: number;
}

/** Longest wait, after a run, for the receiver to have every event of it. */
const DELIVERY_TIMEOUT_MS = Number(process.env.BENCH_DELIVERY_TIMEOUT_MS ?? 60_000);

/** Reads the receiver until two readings `quietMs` apart agree (what was sent before has arrived). */
async function settled(count: () => Promise<ReceiverCount>, quietMs = 300): Promise<ReceiverCount> {
  let last = await count();
  for (const deadline = performance.now() + DELIVERY_TIMEOUT_MS; performance.now() < deadline; ) {
    await new Promise((r) => setTimeout(r, quietMs));
    const now = await count();
    if (now.events === last.events && now.requests === last.requests) return now;
    last = now;
  }
  return last;
}

/** What one measured run gives. */
interface GetRun {
  reqPerSec: number;
  /** Registry CPU per GET; with notifications on, up to the moment the receiver had every event of the run. */
  cpuUsPerReq: number;
  /** Events per POST at the receiver during the run; NaN with notifications off. */
  eventsPerPost: number;
  /** Whether every event of the run (one pull per GET) reached the receiver within DELIVERY_TIMEOUT_MS. */
  allDelivered: boolean;
}

/**
 * Manifest GETs/s of one autocannon run, after a 1 s warm-up, and the registry's CPU per
 * request. With `count` (notifications on), the warm-up's events are delivered first, and
 * the CPU is read once the receiver holds one event per GET of the run: the cost of
 * delivering every event is in the figure, not left for after it.
 */
async function manifestGetRun(registry: RegistryProcess, image: PushedImage, count?: () => Promise<ReceiverCount>): Promise<GetRun> {
  const url = image.manifestUrl.replace(/^http:\/\/[^/]+/, registry.url);
  const headers = ['-H', `Accept=${image.accept}`];
  await autocannon(url, ['-c', String(GET_CONNECTIONS), '-d', '1', ...headers]);
  const before = count ? await settled(count) : undefined;
  const cpuBefore = processTreeCpuMs(registry.pid);
  const result = await autocannon(url, ['-c', String(GET_CONNECTIONS), '-d', String(GET_SECONDS), ...headers]);
  let after: ReceiverCount | undefined;
  let allDelivered = true;
  if (count && before) {
    const expected = before.events + result.total;
    try {
      await waitUntil(async () => (after = await count()).events >= expected, `${result.total} events of the run at the receiver`, DELIVERY_TIMEOUT_MS, 10);
    } catch {
      allDelivered = false;
    }
  }
  const cpuAfter = processTreeCpuMs(registry.pid);
  if (result.non2xx > 0 || result.errors > 0 || result.ok === 0) {
    throw new Error(`manifest GET ${url}: ${result.ok} ok, ${result.non2xx} non-2xx, ${result.errors} errors`);
  }
  const cpuUsPerReq = cpuBefore === undefined || cpuAfter === undefined ? NaN : ((cpuAfter - cpuBefore) * 1000) / result.total;
  const eventsPerPost = before && after && after.requests > before.requests ? (after.events - before.events) / (after.requests - before.requests) : NaN;
  return { reqPerSec: result.reqPerSec, cpuUsPerReq, eventsPerPost, allDelivered };
}

/** One registry configuration over GET_ROUNDS runs: medians, and each run's req/s. */
export interface GetFigures {
  reqPerSec: number;
  /** CPU of the registry process and its children per request, including event delivery; NaN without /proc. */
  cpuUsPerReq: number;
  /** Events the receiver counted while each run's registry was up, median. */
  delivered: number;
  /** Mean events per POST during the measured run, median over runs; NaN with notifications off. */
  eventsPerPost: number;
  /** Whether every run delivered each of its events before its CPU was read. */
  allDelivered: boolean;
  runs: number[];
  /** Each run's CPU per request, in round order. */
  cpuRuns: number[];
}

/** Off, on, and optionally on with more endpoint fields (`variant`). */
export interface OffOnFigures {
  off: GetFigures;
  on: GetFigures;
  variant?: GetFigures;
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

/**
 * Measures manifest GETs/s on one registry implementation with notifications off and on
 * (one endpoint at the counting receiver, in another process), over the same storage.
 * Each configuration gets a fresh process per run; runs alternate between the
 * configurations, in reverse order every other round, so drift on this shared machine
 * falls on all of them alike. Everything it starts is stopped, also when it fails.
 */
export async function manifestGetsOffOn(start: StartRegistry, variant?: Record<string, unknown>): Promise<OffOnFigures> {
  const rootDir = mkdtempSync(path.join(os.tmpdir(), 'bench-registry-data-'));
  let receiver: ChildProcess | undefined;
  let registry: RegistryProcess | undefined;
  try {
    const started = await startChild('bench/counting-receiver.ts');
    receiver = started.child;
    const receiverUrl = `http://127.0.0.1:${started.firstLine.trim()}/`;
    const counts = () => getJson<ReceiverCount>(receiverUrl);
    const count = async () => (await counts()).events;

    const configs: { key: keyof OffOnFigures; endpointFields?: Record<string, unknown> }[] = [{ key: 'off' }, { key: 'on', endpointFields: {} }];
    if (variant) configs.push({ key: 'variant', endpointFields: variant });
    const runs = new Map<string, (GetRun & { delivered: number })[]>(configs.map((c) => [c.key, []]));
    let image: PushedImage | undefined;
    for (let round = 0; round < GET_ROUNDS; round++) {
      for (const config of round % 2 === 0 ? configs : [...configs].reverse()) {
        const before = await count();
        registry = await start({ rootDir, ...(config.endpointFields ? { endpointUrl: receiverUrl, endpointFields: config.endpointFields } : {}) });
        image ??= await pushImageOverHttp(registry.url, 'bench/tiny', 'latest');
        const run = await manifestGetRun(registry, image, config.endpointFields ? counts : undefined);
        const delivered = (await count()) - before;
        await registry.stop();
        registry = undefined;
        if (config.endpointFields && delivered === 0) throw new Error(`notifications were on (${config.key}) but the receiver counted no events`);
        if (!config.endpointFields && delivered !== 0) throw new Error(`notifications were off but the receiver counted ${delivered} events`);
        runs.get(config.key)!.push({ ...run, delivered });
      }
    }
    const summary = (key: string): GetFigures => {
      const list = runs.get(key)!;
      return {
        reqPerSec: median(list.map((r) => r.reqPerSec)),
        cpuUsPerReq: median(list.map((r) => r.cpuUsPerReq)),
        delivered: median(list.map((r) => r.delivered)),
        eventsPerPost: median(list.map((r) => r.eventsPerPost)),
        allDelivered: list.every((r) => r.allDelivered),
        runs: list.map((r) => r.reqPerSec),
        cpuRuns: list.map((r) => r.cpuUsPerReq),
      };
    };
    return { off: summary('off'), on: summary('on'), ...(variant ? { variant: summary('variant') } : {}) };
  } finally {
    if (registry) await registry.stop();
    if (receiver) await stopWithin(receiver);
    rmSync(rootDir, { recursive: true, force: true });
  }
}

// A HEAD load generator for its own process (autocannon waits for a body after HEAD and
// hangs). Sends `count` HEADs over `connections` keep-alive sockets, stops after `limitMs`
// whatever happened, and prints {"ok", "failed", "seconds"}.
const HEAD_SCRIPT = `
const http = require('node:http');
const [url, accept, count, connections, limitMs] = process.argv.slice(1);
const agent = new http.Agent({ keepAlive: true, maxSockets: Number(connections) });
let sent = 0, ok = 0, failed = 0;
const t0 = performance.now();
const deadline = t0 + Number(limitMs);
function one() {
  return new Promise((resolve) => {
    const req = http.request(url, { method: 'HEAD', agent, headers: { accept } }, (res) => {
      if (res.statusCode >= 200 && res.statusCode < 300) ok++; else failed++;
      res.resume();
      res.on('end', resolve);
    });
    req.on('error', () => { failed++; resolve(); });
    req.end();
  });
}
async function worker() {
  while (sent < Number(count) && performance.now() < deadline) { sent++; await one(); }
}
Promise.all(Array.from({ length: Number(connections) }, worker)).then(() => {
  console.log(JSON.stringify({ ok, failed, seconds: (performance.now() - t0) / 1000 }));
  agent.destroy();
});
`;

/**
 * Runs HEAD_SCRIPT in a child process (`count` manifest HEADs on 10 connections, for at
 * most `limitMs`) against the image's registry, or the same path on `baseUrl`.
 */
export async function manifestHeads(image: PushedImage, count: number, baseUrl?: string, limitMs = 60_000): Promise<{ ok: number; failed: number; seconds: number }> {
  const target = baseUrl ? image.manifestUrl.replace(/^http:\/\/[^/]+/, baseUrl) : image.manifestUrl;
  const child = spawn(process.execPath, ['-e', HEAD_SCRIPT, target, image.accept, String(count), '10', String(limitMs)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
  try {
    const code = await new Promise<number | null>((resolve, reject) => {
      child.once('error', reject);
      child.once('exit', resolve);
    });
    if (code !== 0) throw new Error(`HEAD load generator exited with ${code}`);
  } finally {
    await stopWithin(child, 1000);
  }
  return JSON.parse(out) as { ok: number; failed: number; seconds: number };
}

/**
 * (a) Backlog drain. The endpoint is not listening while the registry serves BACKLOG
 * manifest HEADs (threshold 10, backoff 100ms, so it keeps retrying about ten times a
 * second); then the counting receiver starts on that port, and the rate is all queued
 * events over the time from the receiver listening to the last one counted.
 */
async function backlogDrain(): Promise<Result[]> {
  const rootDir = mkdtempSync(path.join(os.tmpdir(), 'bench-go-drain-'));
  const receiverPort = await freePort();
  const receiverUrl = `http://127.0.0.1:${receiverPort}/`;
  let registry: RegistryProcess | undefined;
  let receiver: ChildProcess | undefined;
  try {
    registry = await startGoRegistry({ rootDir, endpointUrl: receiverUrl, threshold: 10, backoff: '100ms' });
    const image = await pushImageOverHttp(registry.url, 'bench/tiny', 'latest');
    const heads = await manifestHeads(image, BACKLOG);
    if (heads.ok !== BACKLOG) throw new Error(`expected ${BACKLOG} manifest HEADs answered 2xx, got ${heads.ok} (${heads.failed} failed)`);
    const expected = BACKLOG + PUSH_EVENTS;

    const started = await startChild('bench/counting-receiver.ts', [], { PORT: String(receiverPort) });
    const t0 = performance.now();
    receiver = started.child;
    let counted = 0;
    try {
      await waitUntil(
        async () => (counted = (await getJson<{ events: number }>(receiverUrl)).events) >= expected,
        `${expected} events at the receiver`,
        DRAIN_TIMEOUT_MS,
        20,
      );
    } catch (err) {
      throw new Error(`${(err as Error).message}; it had counted ${counted}`);
    }
    const seconds = (performance.now() - t0) / 1000;
    return [
      {
        name: `go registry: drain ${counted.toLocaleString('en-US')} queued events after an outage`,
        value: counted / seconds,
        unit: 'events/s',
        note: `endpoint not listening during ${BACKLOG.toLocaleString('en-US')} HEADs; backoff 100ms; one event per POST`,
      },
      { name: 'go registry: manifest HEADs while the endpoint was down', value: heads.ok / heads.seconds, unit: 'req/s', note: 'setup step; a Node client, 10 keep-alive connections' },
    ];
  } finally {
    if (registry) await registry.stop();
    if (receiver) await stopWithin(receiver);
    rmSync(rootDir, { recursive: true, force: true });
  }
}

/** How the req/s of a configuration were measured, for a note. */
export function runsNote(figures: GetFigures): string {
  return `median of ${figures.runs.map((r) => Math.round(r)).join(', ')}; ${GET_CONNECTIONS} connections, ${GET_SECONDS} s each`;
}

/** (b) as results, labelled with `who`; shared with the demo registry suite. */
export function offOnResults(who: string, figures: OffOnFigures): Result[] {
  return [
    { name: `${who}: manifest GET, notifications off`, value: figures.off.reqPerSec, unit: 'req/s', note: runsNote(figures.off) },
    { name: `${who}: manifest GET, notifications on`, value: figures.on.reqPerSec, unit: 'req/s', note: runsNote(figures.on) },
    { name: `${who}: ratio on/off`, value: figures.on.reqPerSec / figures.off.reqPerSec, unit: '' },
    { name: `${who}: registry CPU per GET, notifications off`, value: figures.off.cpuUsPerReq, unit: 'µs/req' },
    {
      name: `${who}: registry CPU per GET, notifications on`,
      value: figures.on.cpuUsPerReq,
      unit: 'µs/req',
      note: `with delivery; ${Math.round(figures.on.delivered).toLocaleString('en-US')} events delivered per run`,
    },
    { name: `${who}: registry CPU per GET, ratio on/off`, value: figures.on.cpuUsPerReq / figures.off.cpuUsPerReq, unit: '', note: `${roundRatiosNote(figures.on, figures.off)}; ${deliveryNote(figures.on)}` },
    { name: `${who}: events per POST, notifications on`, value: figures.on.eventsPerPost, unit: 'events', note: 'mean over the measured run, median of runs' },
  ];
}

/**
 * The CPU ratio of each round (the two runs of a round are minutes apart at most, so a
 * noisy neighbour that comes and goes weighs less on it) and their median, beside the
 * ratio of the medians that the figure is.
 */
export function roundRatiosNote(on: GetFigures, off: GetFigures): string {
  const ratios = on.cpuRuns.map((cpu, i) => cpu / off.cpuRuns[i]);
  return `ratio per round ${ratios.map((r) => r.toFixed(2)).join(', ')}, median ${median(ratios).toFixed(2)}`;
}

/** Whether the CPU of `figures` covers delivering every event of its runs. */
export function deliveryNote(figures: GetFigures): string {
  return figures.allDelivered
    ? 'CPU read once the receiver had every event of the run'
    : `NOT every event reached the receiver within ${DELIVERY_TIMEOUT_MS / 1000} s of a run's end: CPU of delivery is missing`;
}

export function goRegistryInstalled(): boolean {
  return existsSync(GO_REGISTRY);
}

export async function benchDistribution(): Promise<Result[]> {
  if (!goRegistryInstalled()) {
    console.log(`skipped: ${GO_REGISTRY} is not installed (Debian package docker-registry; or set BENCH_GO_REGISTRY)`);
    return [];
  }
  const results = await backlogDrain();
  results.push(...offOnResults('go registry', await manifestGetsOffOn(startGoRegistry)));
  return results;
}
