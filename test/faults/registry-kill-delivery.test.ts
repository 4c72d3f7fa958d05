// Fault injection, scenario 4: the demo registry (a real process, SQLite queue) is
// SIGKILLed while it delivers a backlog to a slow endpoint, at a random moment of a
// request (seeded, printed: FAULT_SEED=<seed> repeats it), twice. After each restart on
// the same queue file, everything pending is delivered, in order; an event arrives twice
// only if it was in the request under way at the kill (one request at a time per
// endpoint, so at most one batch).
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pushImageOverHttp } from '../../demo-registry/sample-image';
import { blobKey, demoConfig, FAULT_IMAGE, hookMetrics, opKey, putTag, startDemo, tagKey, type Demo } from '../helpers/fault-demo';
import { faultSeed, RecordingReceiver, report, seededRandom, tally } from '../helpers/fault-receiver';
import { sleep, waitFor } from '../helpers/wait';

const REPO = 'faults/kill-delivery';
const MAX_EVENTS = 5;
const SLOW_MS = 250;

describe('faults: the registry SIGKILLed during delivery', () => {
  let dir: string;
  let receiver: RecordingReceiver;
  let demo: Demo | undefined;
  beforeEach(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'faults-kill-delivery-'));
    receiver = await new RecordingReceiver().start();
  });
  afterEach(async () => {
    await demo?.proc.stop('SIGKILL');
    demo = undefined;
    await receiver.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('delivers everything pending after each restart, duplicates only of the batch in flight at the kill', async () => {
    const seed = faultSeed();
    console.log(`[faults] registry-kill-delivery: seed ${seed} (FAULT_SEED=${seed} repeats these kill points)`);
    const random = seededRandom(seed);
    receiver.delayMs = SLOW_MS;
    const config = demoConfig({
      root: path.join(dir, 'registry'),
      queue: { type: 'sqlite', path: path.join(dir, 'queue.db') },
      endpointUrl: receiver.url,
      endpoint: { maxevents: MAX_EVENTS, timeout: '2s' },
    });
    demo = await startDemo(dir, config);
    const expected: string[] = [];
    await pushImageOverHttp(demo.url, REPO, 'base', FAULT_IMAGE);
    expected.push(...FAULT_IMAGE.blobs.map((b) => blobKey(REPO, b.digest)), tagKey(REPO, 'base'));
    let n = 0;
    const kills: Array<Record<string, unknown>> = [];
    /** Event ids the kill may make arrive twice: those of the request under way. */
    const mayRepeat = new Set<string>();

    for (let round = 0; round < 2; round++) {
      // A backlog: pushes answered at once, their events queued behind the slow endpoint.
      for (let i = 0; i < 25; i++) {
        const tag = `t${String(n++).padStart(3, '0')}`;
        expect(await putTag(demo.url, REPO, FAULT_IMAGE, tag)).toBe(201);
        expected.push(tagKey(REPO, tag));
      }
      // Kill at a random moment of a request, once a few have arrived.
      const requestsBefore = receiver.deliveries.length;
      const nth = requestsBefore + 1 + Math.floor(random() * 3);
      await receiver.until((r) => r.deliveries.length >= nth, 20_000);
      await sleep(Math.floor(random() * SLOW_MS * 1.2));
      const pendingAtKill = (await hookMetrics(demo)).Pending;
      const killedAt = performance.now();
      expect(await demo.proc.stop('SIGKILL')).toBe('SIGKILL');
      const before = receiver.deliveries.filter((d) => d.receivedAt < killedAt);
      const underWay = before[before.length - 1];
      for (const e of underWay.events) mayRepeat.add(e.id);

      const restartAt = performance.now();
      demo = await startDemo(dir, config);
      const pendingAfterRestart = (await hookMetrics(demo)).Pending;
      const acceptedBefore = [...expected];
      await receiver.until((r) => {
        const got = new Set(r.events().map(opKey));
        return acceptedBefore.every((k) => got.has(k));
      }, 30_000);
      kills.push({
        round,
        killedDuringRequest: underWay.index,
        requestAnsweredBeforeKill: underWay.answeredAt !== undefined && underWay.answeredAt < killedAt,
        batchInFlight: underWay.events.length,
        pendingAtKill,
        pendingAfterRestart,
        restartToDeliveredMs: Math.round(performance.now() - restartAt),
      });
    }
    await sleep(300); // negative window
    await waitFor(async () => (await hookMetrics(demo!)).Pending === 0, { timeoutMs: 10_000 });

    const received = receiver.events();
    const t = tally(expected, received.map(opKey));
    const ids = received.map((e) => e.id);
    const dupIds = [...new Set(ids.filter((id, i) => ids.indexOf(id) !== i))];
    report('registry-kill-delivery', {
      seed,
      kills,
      operations: expected.length,
      received: t.received,
      distinct: new Set(ids).size,
      duplicates: t.duplicates,
      duplicateIdsOutsideInFlightBatch: dupIds.filter((id) => !mayRepeat.has(id)).length,
      orderKept: t.orderKept,
      missing: t.missing.length,
      requests: receiver.deliveries.length,
    });
    expect(t.missing).toEqual([]);
    expect(t.unexpected).toEqual([]);
    expect(t.orderKept).toBe(true);
    expect(new Set(ids).size).toBe(expected.length);
    // Duplicates: only of the batch under way at each kill, each at most once more per kill.
    expect(dupIds.filter((id) => !mayRepeat.has(id))).toEqual([]);
    expect(t.duplicates).toBeLessThanOrEqual(kills.length * MAX_EVENTS);
    for (const k of kills) expect(k.pendingAfterRestart).toBeGreaterThan(0);
  }, 90_000);
});
