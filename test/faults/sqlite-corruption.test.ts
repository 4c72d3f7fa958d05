// Fault injection, scenario 6: the demo registry's SQLite queue file is damaged (garbage
// written over pages of the real file, behind SQLite's back) while the registry runs with
// a backlog for an endpoint that was away. When the endpoint comes back, that endpoint's
// delivery must stop (State `stopped` in /debug/vars) rather than loop sending the same
// events again: the POSTs over the next seconds are counted and bounded. The next start
// on the file refuses it, naming PRAGMA quick_check.
import path from 'node:path';
import Database from 'better-sqlite3';
import { pushImageOverHttp } from '../../demo-registry/sample-image';
import { demoConfig, FAULT_IMAGE, hookMetrics, putTag, startDemo, type Demo } from '../helpers/fault-demo';
import { FaultProxy } from '../helpers/fault-proxy';
import { openFaultRig, closeFaultRig } from '../helpers/fault-rig';
import { RecordingReceiver, report } from '../helpers/fault-receiver';
import { RegistryProcess } from '../helpers/registry-process';
import { leafPages, prepareTouch, smash, touchFromElsewhere } from '../helpers/sqlite-damage';
import { sleep, waitFor } from '../helpers/wait';

const REPO = 'faults/corrupt';

/** Moves every page of the WAL into the file, so that damage to the file is what SQLite reads. */
async function checkpoint(file: string): Promise<void> {
  const db = new Database(file);
  try {
    prepareTouch(db);
    await waitFor(() => (db.pragma('wal_checkpoint(TRUNCATE)') as Array<{ busy: number }>)[0].busy === 0, { timeoutMs: 5_000, intervalMs: 50 });
  } finally {
    db.close();
  }
}

describe('faults: a corrupted SQLite queue file', () => {
  let dir: string;
  let receiver: RecordingReceiver;
  let proxy: FaultProxy;
  let demo: Demo | undefined;
  beforeEach(async () => {
    ({ dir, receiver, proxy } = await openFaultRig('faults-sqlite-', (r) => new FaultProxy(r.port).start()));
  });
  afterEach(async () => {
    await closeFaultRig({ dir, receiver, proxy }, demo);
    demo = undefined;
  });

  /**
   * The demo running on a file with a backlog of 83 events for an endpoint that was away;
   * half the leaf pages of the queue table are then smashed and the endpoint comes back.
   * Resolves once /debug/vars says `stopped`.
   */
  async function damagedAndStopped(queue: object = {}) {
    const file = path.join(dir, 'queue.db');
    const config = demoConfig({ root: path.join(dir, 'registry'), queue: { type: 'sqlite', path: file, ...queue }, endpointUrl: proxy.url, endpoint: { maxevents: 10 } });
    demo = await startDemo(dir, config);
    proxy.cut();
    await pushImageOverHttp(demo.url, REPO, 'base', FAULT_IMAGE);
    for (let i = 0; i < 80; i++) expect(await putTag(demo.url, REPO, FAULT_IMAGE, `t${String(i).padStart(3, '0')}`)).toBe(201);
    expect((await hookMetrics(demo)).Pending).toBe(83);

    await checkpoint(file);
    const leaves = leafPages(file, 'queue_events');
    expect(leaves.length).toBeGreaterThan(6);
    smash(file, leaves.slice(0, Math.ceil(leaves.length / 2)));
    touchFromElsewhere(file);

    const restoredAt = performance.now();
    proxy.restore();
    await waitFor(async () => (await hookMetrics(demo!)).State === 'stopped', {
      timeoutMs: 15_000,
      describe: async () => ({ metrics: await hookMetrics(demo!), stderr: demo!.proc.stderr.slice(-5) }),
    });
    return { file, config, leaves: leaves.length, stoppedMs: performance.now() - restoredAt };
  }

  it('damage found at run time stops that endpoint (State stopped, no delivery loop); the next start refuses the file naming quick_check', async () => {
    const { file, config, leaves, stoppedMs } = await damagedAndStopped();
    const running = demo!;
    const postsAtStop = receiver.deliveries.length;
    await sleep(3_000);
    const postsAfterStop = receiver.deliveries.length - postsAtStop;
    const metrics = await hookMetrics(running);
    const damageLines = running.proc.stderr.filter((l) => /damaged/.test(l));

    expect(await running.proc.stop('SIGKILL')).toBe('SIGKILL');
    demo = undefined;
    const restart = await RegistryProcess.start(dir, config).then(
      async (p) => {
        await p.stop('SIGKILL');
        return 'started';
      },
      (err: Error) => err.message,
    );
    report('sqlite-corruption/run-time', {
      leafPages: leaves,
      smashed: Math.ceil(leaves / 2),
      stoppedAfterRestoreMs: Math.round(stoppedMs),
      postsBeforeStop: postsAtStop,
      eventsDeliveredBeforeStop: receiver.events().length,
      postsIn3sAfterStop: postsAfterStop,
      metrics: { Pending: metrics.Pending, Failures: metrics.Failures, Errors: metrics.Errors, Spooled: metrics.Spooled, State: metrics.State },
      damageLines: damageLines.length,
      restart: restart.split('\n').find((l) => /quick_check|cannot start/.test(l)) ?? restart.slice(0, 300),
    });

    expect(metrics.State).toBe('stopped');
    // No loop: nothing is sent once delivery stopped.
    expect(postsAfterStop).toBe(0);
    expect(postsAtStop).toBeLessThanOrEqual(2);
    // The damage is said, not repeated at every attempt.
    expect(damageLines.length).toBeGreaterThanOrEqual(1);
    expect(damageLines.length).toBeLessThanOrEqual(3);
    // Whatever was delivered before it stopped went once.
    const ids = receiver.events().map((e) => e.id);
    expect(new Set(ids).size).toBe(ids.length);
    expect(restart).toMatch(/PRAGMA quick_check found the file damaged/);
    expect(restart).toContain(file);
  }, 60_000);

  // Once delivery stopped on a damaged store, a later write still goes to the store's
  // spool: kept on disk (spool), or refused so the request is not answered 2xx (fail).
  it.each([['spool'], ['fail']])(
    'a push after the damage stopped delivery keeps its event (spooled), or is not answered 2xx (queue.onstoreerror: %s)',
    async (onstoreerror) => {
      await damagedAndStopped({ onstoreerror });
      const running = demo!;
      const before = await hookMetrics(running);
      const linesBefore = running.proc.stderr.length;
      const status = await putTag(running.url, REPO, FAULT_IMAGE, 'after-damage');
      await sleep(300);
      const after = await hookMetrics(running);
      const kept = after.Spooled + after.Pending > before.Spooled + before.Pending;
      report(`sqlite-corruption/push-after-stop/${onstoreerror}`, {
        status,
        spooled: [before.Spooled, after.Spooled],
        pending: [before.Pending, after.Pending],
        kept,
        said: running.proc.stderr.slice(linesBefore).map((l) => l.slice(0, 200)),
      });
      expect({ status, kept: kept || status >= 500 }).toEqual({ status, kept: true });
    },
    60_000,
  );
});
