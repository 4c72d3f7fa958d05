// One demo registry under manifest GET load, for profiling (not part of `npm run bench`):
//   npx tsx bench/profile-registry.ts            notifications on, Distribution's endpoint config
//   OFF=1 npx tsx bench/profile-registry.ts      notifications off
//   PROF=dir  ... writes a V8 CPU profile of the registry to dir (node --cpu-prof)
//   NOTIFICATIONS='{"log":{"events":0,"attempts":0}}'  merged into the notifications section
//   IGNORE_PULLS=1                               the endpoint ignores pulls: events are made and held, none delivered
//   DEMO_ROOT=/path/to/another/checkout          runs that tree's demo registry (A/B runs)
//   GC_LOG=file                                  V8's line per collection (--trace-gc-nvp) to file; the
//                                                JSON line then adds the bytes allocated and promoted per GET
// Prints one JSON line: req/s, and the registry's CPU per GET (user and system apart, and its main thread's), read
// once the receiver holds every event of the run, as bench/distribution.ts measures it.
import { spawn } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parse, stringify } from 'yaml';
import { pushImageOverHttp } from '../demo-registry/sample-image';
import { registryConfig, waitForRegistry } from './distribution';
import { autocannon, freePort, getJson, ROOT, startChild, stopWithin, TSX_HOOK, waitUntil } from './util';

/** User and system CPU of a process (or of one of its threads, by `tid`), in ms, from /proc. */
function cpuOf(pid: number, tid?: number): { user: number; system: number } {
  const text = readFileSync(tid === undefined ? `/proc/${pid}/stat` : `/proc/${pid}/task/${tid}/stat`, 'utf8');
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  return { user: Number(fields[11]) * 10, system: Number(fields[12]) * 10 };
}

async function main(): Promise<void> {
  const off = process.env.OFF === '1';
  const seconds = process.env.SECONDS_RUN ?? '8';
  const rootDir = mkdtempSync(path.join(os.tmpdir(), 'profile-data-'));
  const dir = mkdtempSync(path.join(os.tmpdir(), 'profile-registry-'));
  const receiver = await startChild('bench/counting-receiver.ts');
  process.on('exit', () => receiver.child.kill('SIGKILL'));
  const receiverUrl = `http://127.0.0.1:${receiver.firstLine.trim()}/`;
  const port = await freePort();
  const config = parse(registryConfig(port, { rootDir, ...(off ? {} : { endpointUrl: receiverUrl }) }));
  if (!off && process.env.NOTIFICATIONS) Object.assign(config.notifications, JSON.parse(process.env.NOTIFICATIONS));
  const ignorePulls = !off && process.env.IGNORE_PULLS === '1';
  if (ignorePulls) config.notifications.endpoints[0].ignore = { actions: ['pull'] };
  const configFile = path.join(dir, 'config.yml');
  writeFileSync(configFile, stringify(config));
  const prof = process.env.PROF ? ['--cpu-prof', `--cpu-prof-dir=${process.env.PROF}`] : [];
  const gcLog = process.env.GC_LOG;
  if (gcLog) prof.push('--trace-gc-nvp');
  const gcFd = gcLog ? openSync(gcLog, 'w') : undefined;
  const main = path.join(process.env.DEMO_ROOT ?? ROOT, 'demo-registry', 'main.ts');
  const registry = spawn(process.execPath, [...prof, '-r', TSX_HOOK, main, '--config', configFile], { stdio: ['ignore', gcFd ?? 'ignore', 'inherit'] });
  if (gcFd !== undefined) closeSync(gcFd);
  /** Bytes allocated and promoted so far, from the collections logged. */
  const gcTotals = () => {
    let allocated = 0;
    let promoted = 0;
    for (const line of gcLog ? readFileSync(gcLog, 'utf8').split('\n') : []) {
      allocated += Number(/ allocated=(\d+)/.exec(line)?.[1] ?? 0);
      promoted += Number(/ promoted=(\d+)/.exec(line)?.[1] ?? 0);
    }
    return { allocated, promoted };
  };
  try {
    const url = `http://127.0.0.1:${port}`;
    await waitForRegistry(url, registry);
    const image = await pushImageOverHttp(url, 'bench/tiny', 'latest');
    const headers = ['-H', `Accept=${image.accept}`];
    await autocannon(image.manifestUrl, ['-c', '10', '-d', '2', ...headers]);
    const count = async () => (await getJson<{ events: number }>(receiverUrl)).events;
    await new Promise((r) => setTimeout(r, 500));
    const before = await count();
    const cpu0 = cpuOf(registry.pid!);
    const main0 = cpuOf(registry.pid!, registry.pid!);
    const gc0 = gcTotals();
    const run = await autocannon(image.manifestUrl, ['-c', '10', '-d', seconds, ...headers]);
    if (!off && !ignorePulls) await waitUntil(async () => (await count()) >= before + run.total, 'every event of the run at the receiver', 60_000, 10);
    const cpu1 = cpuOf(registry.pid!);
    const main1 = cpuOf(registry.pid!, registry.pid!);
    const gc1 = gcTotals();
    const per = (ms: number) => Math.round((ms * 1000) / run.total);
    const user = per(cpu1.user - cpu0.user);
    const system = per(cpu1.system - cpu0.system);
    const gc = gcLog
      ? { allocatedPerReq: Math.round((gc1.allocated - gc0.allocated) / run.total), promotedPerReq: Math.round((gc1.promoted - gc0.promoted) / run.total) }
      : {};
    console.log(JSON.stringify({ notifications: off ? 'off' : ignorePulls ? 'on, pulls ignored' : 'on', reqPerSec: Math.round(run.reqPerSec), requests: run.total, cpuUsPerReq: user + system, userUs: user, systemUs: system, mainThreadUs: per(main1.user + main1.system - main0.user - main0.system), ...gc }));
  } finally {
    await stopWithin(registry, 20_000);
    await stopWithin(receiver.child);
    rmSync(dir, { recursive: true, force: true });
    rmSync(rootDir, { recursive: true, force: true });
  }
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
