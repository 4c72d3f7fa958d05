// Our demo registry (demo-registry/, Express + this library) under manifest GET load with
// notifications off and on, next to the Go registry measured the same way in the same
// suite, so the two are compared under the same conditions of this run.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { goRegistryInstalled, manifestGetsOffOn, offOnResults, runsNote, registryConfig, startGoRegistry, waitForRegistry, type StartRegistry } from './distribution';
import { freePort, ROOT, stopWithin, TSX_HOOK, type Result } from './util';

/** Starts `demo-registry/main.ts --config FILE` (one node process with tsx's hook) with a temporary Distribution-style config. */
export const startDemoRegistry: StartRegistry = async (options) => {
  const port = await freePort();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'bench-demo-registry-'));
  const configFile = path.join(dir, 'config.yml');
  writeFileSync(configFile, registryConfig(port, options));
  const child = spawn(process.execPath, ['-r', TSX_HOOK, path.join(ROOT, 'demo-registry', 'main.ts'), '--config', configFile], { stdio: ['ignore', 'ignore', 'pipe'] });
  // Keep the last lines of its log for the error message should it exit early.
  const log: string[] = [];
  createInterface({ input: child.stderr! }).on('line', (line) => {
    log.push(line);
    if (log.length > 20) log.shift();
  });
  const url = `http://127.0.0.1:${port}`;
  const stop = async () => {
    await stopWithin(child, 10_000);
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await waitForRegistry(url, child);
  } catch (err) {
    await stop();
    throw new Error(`${(err as Error).message}\n${log.join('\n')}`);
  }
  return { url, pid: child.pid!, stop };
};

/** Our extension, for a third run: up to 500 events per envelope, waiting up to 100ms to fill one. */
const BATCHED = { maxevents: 500, linger: '100ms' };

export async function benchRegistry(): Promise<Result[]> {
  const ours = await manifestGetsOffOn(startDemoRegistry, BATCHED);
  const results = offOnResults('demo registry', ours);
  results[2].note = 'target ≥ 0.95';
  if (ours.variant) {
    results.push(
      { name: 'demo registry: manifest GET, on, maxevents 500, linger 100ms', value: ours.variant.reqPerSec, unit: 'req/s', note: runsNote(ours.variant) },
      { name: 'demo registry: ratio on (maxevents 500)/off', value: ours.variant.reqPerSec / ours.off.reqPerSec, unit: '', note: 'target ≥ 0.95' },
      {
        name: 'demo registry: registry CPU per GET, on, maxevents 500',
        value: ours.variant.cpuUsPerReq,
        unit: 'µs/req',
        note: `with delivery; ${Math.round(ours.variant.delivered).toLocaleString('en-US')} events delivered per run`,
      },
    );
  }
  if (!goRegistryInstalled()) {
    console.log('go registry not installed: no reference figures beside ours');
    return results;
  }
  const go = await manifestGetsOffOn(startGoRegistry);
  results.push(...offOnResults('go registry (same suite)', go));
  results.push({
    name: 'demo registry / go registry, manifest GET, notifications on',
    value: ours.on.reqPerSec / go.on.reqPerSec,
    unit: '',
  });
  return results;
}
