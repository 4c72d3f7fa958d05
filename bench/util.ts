import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { createInterface } from 'node:readline';
import Redis from 'ioredis';

export const ROOT = path.resolve(__dirname, '..');
/** tsx's hook: children run as one node process (the tsx command forks a second one). */
export const TSX_HOOK = require.resolve('tsx/cjs');

/** Starts a TypeScript file as a child process and resolves with it and the first line it prints. */
export async function startChild(file: string, args: string[] = [], env: NodeJS.ProcessEnv = {}): Promise<{ child: ChildProcess; firstLine: string }> {
  const child = spawn(process.execPath, ['-r', TSX_HOOK, path.join(ROOT, file), ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'inherit'] });
  const lines = createInterface({ input: child.stdout! });
  const firstLine = await new Promise<string>((resolve, reject) => {
    lines.once('line', resolve);
    child.once('exit', (code) => reject(new Error(`${file} exited with ${code} before it was ready`)));
  });
  return { child, firstLine };
}

export function stop(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null) return resolve();
    child.once('exit', () => resolve());
    child.kill('SIGTERM');
  });
}

/** CPU time of this process in ms (user + system) since `from`. */
export function cpuMs(from?: NodeJS.CpuUsage): number {
  const u = process.cpuUsage(from);
  return (u.user + u.system) / 1000;
}

export async function getJson<T>(url: string): Promise<T> {
  const res = await fetch(url);
  return (await res.json()) as T;
}

export interface Result {
  name: string;
  value: number;
  unit: string;
  note?: string;
}

export function report(results: Result[]): void {
  for (const r of results) {
    const v = r.value >= 100 ? Math.round(r.value).toLocaleString('en-US') : r.value.toFixed(r.value >= 10 ? 1 : 3);
    console.log(`${r.name.padEnd(58)} ${v.padStart(12)} ${r.unit}${r.note ? `  (${r.note})` : ''}`);
  }
}

/** A TCP port on 127.0.0.1 that was free a moment ago (for programs that need one in a config file). */
export async function freePort(): Promise<number> {
  const net = await import('node:net');
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const port = (server.address() as import('node:net').AddressInfo).port;
      server.close(() => resolve(port));
    });
  });
}

/** Like `stop`, but sends SIGKILL when the child has not exited after `graceMs`. */
export function stopWithin(child: ChildProcess, graceMs = 5000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

/** Polls `check` every `intervalMs` until it returns true; throws `what` after `timeoutMs`. */
export async function waitUntil(check: () => Promise<boolean> | boolean, what: string, timeoutMs = 30_000, intervalMs = 20): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!(await check())) {
    if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/** The figures of one autocannon run that the benchmarks print. */
export interface CannonResult {
  /** Mean requests per second over the run. */
  reqPerSec: number;
  /** Requests answered 2xx. */
  ok: number;
  /** Requests answered with another status. */
  non2xx: number;
  /** Connection errors and timeouts. */
  errors: number;
  /** Requests answered, whatever the status. */
  total: number;
  latencyP99Ms: number;
}

/**
 * Runs autocannon in its own process against `url` and returns its JSON figures.
 * `args` are autocannon options, e.g. `['-c', '10', '-d', '10']`; it always stops by itself.
 */
export async function autocannon(url: string, args: string[]): Promise<CannonResult> {
  const bin = path.join(ROOT, 'node_modules', '.bin', 'autocannon');
  const child = spawn(bin, ['-j', '-n', ...args, url], { stdio: ['ignore', 'pipe', 'pipe'] });
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  child.stdout!.on('data', (c: Buffer) => out.push(c));
  child.stderr!.on('data', (c: Buffer) => err.push(c));
  try {
    const code = await new Promise<number | null>((resolve, reject) => {
      child.once('error', reject);
      child.once('exit', (c) => resolve(c));
    });
    if (code !== 0) throw new Error(`autocannon exited with ${code}: ${Buffer.concat(err).toString().slice(0, 500)}`);
  } finally {
    await stopWithin(child, 1000);
  }
  const json = JSON.parse(Buffer.concat(out).toString('utf8')) as {
    requests: { average: number; total: number };
    '2xx': number;
    non2xx: number;
    errors: number;
    timeouts: number;
    latency: { p99: number };
  };
  return { reqPerSec: json.requests.average, ok: json['2xx'], non2xx: json.non2xx, errors: json.errors + json.timeouts, total: json.requests.total, latencyP99Ms: json.latency.p99 };
}

/**
 * CPU time (user + system, ms) used so far by process `pid` and its descendants, from
 * /proc; undefined where there is no /proc. Resolution is one clock tick (10 ms).
 */
export function processTreeCpuMs(pid: number): number | undefined {
  const fs = require('node:fs') as typeof import('node:fs');
  if (!fs.existsSync('/proc/self/stat')) return undefined;
  const stats = new Map<number, { ppid: number; ticks: number }>();
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    let text: string;
    try {
      text = fs.readFileSync(`/proc/${name}/stat`, 'utf8');
    } catch {
      continue; // exited while we looked
    }
    // The command name may hold spaces and parentheses: fields start after the last ')'.
    const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
    stats.set(Number(name), { ppid: Number(fields[1]), ticks: Number(fields[11]) + Number(fields[12]) });
  }
  let ticks = 0;
  const pending = [pid];
  while (pending.length > 0) {
    const p = pending.pop()!;
    ticks += stats.get(p)?.ticks ?? 0;
    for (const [child, s] of stats) if (s.ppid === p) pending.push(child);
  }
  return ticks * 10; // USER_HZ is 100 on Linux
}

/** Deletes the keys of a bench run from Redis at `url`: those matching `pattern` (e.g. `<prefix>:*`). */
export async function deleteRedisKeys(url: string, pattern: string): Promise<void> {
  const r = new Redis(url);
  try {
    let cursor = '0';
    do {
      const [next, keys] = await r.scan(cursor, 'MATCH', pattern, 'COUNT', 10_000);
      if (keys.length) await r.unlink(...keys);
      cursor = next;
    } while (cursor !== '0');
  } finally {
    r.disconnect();
  }
}
