// Our demo registry (demo-registry/, Express + this library) under manifest GET load with
// notifications off and on, next to the Go registry measured the same way in the same
// suite, so the two are compared under the same conditions of this run.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { deliveryNote, roundRatiosNote, goRegistryInstalled, manifestGetsOffOn, offOnResults, runsNote, registryConfig, startGoRegistry, waitForRegistry, type StartRegistry } from './distribution';
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

/** Our extension, for a third run: up to 500 events per envelope, waiting up to 100ms to fill one. What tuning adds. */
const BATCHED = { maxevents: 500, linger: '100ms' };

/**
 * The demo registry with notifications off (no `notifications` section), on (one endpoint
 * configured as Distribution's would be: none of our fields, so our defaults) and on with
 * BATCHED; then Distribution 2.8.2 off and on, in the same run. The targets:
 * manifest GETs with notifications off at least Distribution's rate, and, with
 * notifications on and every event delivered, at most 10% more registry CPU per GET than off.
 */
export async function benchRegistry(): Promise<Result[]> {
  const ours = await manifestGetsOffOn(startDemoRegistry, BATCHED);
  const results = offOnResults('demo registry', ours);
  results.find((r) => r.name === 'demo registry: ratio on/off')!.note = 'target ≥ 0.95';
  const cpuRatio = results.find((r) => r.name === 'demo registry: registry CPU per GET, ratio on/off')!;
  cpuRatio.note = `target ≤ 1.10; Distribution's config, our defaults; ${cpuRatio.note}`;
  if (ours.variant) {
    results.push(
      { name: 'demo registry: manifest GET, on, maxevents 500, linger 100ms', value: ours.variant.reqPerSec, unit: 'req/s', note: `what tuning adds; ${runsNote(ours.variant)}` },
      { name: 'demo registry: ratio on (maxevents 500)/off', value: ours.variant.reqPerSec / ours.off.reqPerSec, unit: '', note: 'target ≥ 0.95' },
      {
        name: 'demo registry: registry CPU per GET, on, maxevents 500',
        value: ours.variant.cpuUsPerReq,
        unit: 'µs/req',
        note: `with delivery; ${Math.round(ours.variant.delivered).toLocaleString('en-US')} events delivered per run`,
      },
      { name: 'demo registry: CPU per GET ratio on (maxevents 500)/off', value: ours.variant.cpuUsPerReq / ours.off.cpuUsPerReq, unit: '', note: `${roundRatiosNote(ours.variant, ours.off)}; ${deliveryNote(ours.variant)}` },
      { name: 'demo registry: events per POST, on, maxevents 500', value: ours.variant.eventsPerPost, unit: 'events' },
    );
  }
  if (!goRegistryInstalled()) {
    console.log('go registry not installed: no reference figures beside ours');
    return results;
  }
  const go = await manifestGetsOffOn(startGoRegistry);
  results.push(...offOnResults('go registry (same suite)', go));
  results.push(
    {
      name: 'demo / go registry, manifest GET, notifications off',
      value: ours.off.reqPerSec / go.off.reqPerSec,
      unit: '',
      note: 'target ≥ 1.0; no notifications section in either config',
    },
    {
      name: 'demo / go registry, manifest GET, notifications on',
      value: ours.on.reqPerSec / go.on.reqPerSec,
      unit: '',
      note: "the same endpoint config for both (Distribution's fields only)",
    },
  );
  return results;
}
