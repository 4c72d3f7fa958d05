// Fault injection, scenario 1: the link to the webhook endpoint fails while the demo
// registry (a real process, SQLite queue) keeps answering pushes. A TCP proxy between
// the registry and a real receiver cuts the link, stalls it (accepts, never answers: the
// endpoint's timeout must fire), stalls only the answers (the receiver got the request:
// the duplicate at-least-once allows), or trickles one byte per 200 ms, both ways or in
// answers only (bytes keep coming, so only the total deadline can end such a request);
// then it is restored. Every event of every 2xx must
// arrive, the first arrival of each in the order the pushes took effect, and duplicates
// only of events that were in flight during the fault.
import path from 'node:path';
import { pushImageOverHttp } from '../../demo-registry/sample-image';
import { demoConfig, FAULT_IMAGE, hookMetrics, opKey, putTag, startDemo, tagKey, blobKey, type Demo } from '../helpers/fault-demo';
import { FaultProxy } from '../helpers/fault-proxy';
import { openFaultRig, closeFaultRig } from '../helpers/fault-rig';
import { RecordingReceiver, report, tally } from '../helpers/fault-receiver';
import { sleep, waitFor } from '../helpers/wait';

const REPO = 'faults/link';
/** The endpoint's per-request deadline (config `timeout`). */
const TIMEOUT_MS = 500;
/** How long each fault lasts: several deadlines. */
const FAULT_MS = 2_000;

type Fault = 'cut' | 'stall' | 'stall-answers' | 'trickle' | 'trickle-answers';

const apply = (proxy: FaultProxy, fault: Fault) => {
  if (fault === 'cut') proxy.cut();
  else if (fault === 'stall') proxy.stall('both');
  else if (fault === 'stall-answers') proxy.stall('responses');
  else if (fault === 'trickle') proxy.trickle(200);
  else proxy.trickle(200, 'responses');
};

describe('faults: the link to the endpoint', () => {
  let dir: string;
  let receiver: RecordingReceiver;
  let proxy: FaultProxy;
  let demo: Demo | undefined;
  beforeEach(async () => {
    ({ dir, receiver, proxy } = await openFaultRig('faults-link-', (r) => new FaultProxy(r.port).start()));
  });
  afterEach(async () => {
    await closeFaultRig({ dir, receiver, proxy }, demo);
    demo = undefined;
  });

  it.each<[Fault, string]>([
    ['cut', 'cut (connections dropped and refused)'],
    ['stall', 'stalled (accepted, never answered: the timeout fires)'],
    ['stall-answers', 'stalled on answers only (the receiver takes each attempt: duplicates)'],
    ['trickle', 'trickling one byte per 200 ms (the total deadline fires)'],
    ['trickle-answers', 'trickling its answers one byte per 200 ms (the receiver takes each attempt; only a total deadline ends one whose bytes keep coming)'],
  ])(
    'delivers every event of every 2xx, in order, after the link is %s for a while and restored: %s',
    async (fault) => {
      demo = await startDemo(
        dir,
        demoConfig({ root: path.join(dir, 'registry'), queue: { type: 'sqlite', path: path.join(dir, 'queue.db') }, endpointUrl: proxy.url, endpoint: { timeout: `${TIMEOUT_MS}ms` } }),
      );
      const expected: string[] = [];
      await pushImageOverHttp(demo.url, REPO, 'base', FAULT_IMAGE);
      expected.push(...FAULT_IMAGE.blobs.map((b) => blobKey(REPO, b.digest)), tagKey(REPO, 'base'));
      let n = 0;
      const push = async (count: number, pauseMs: number) => {
        for (let i = 0; i < count; i++) {
          const tag = `t${String(n++).padStart(3, '0')}`;
          const status = await putTag(demo!.url, REPO, FAULT_IMAGE, tag);
          expect(status).toBe(201);
          expected.push(tagKey(REPO, tag));
          await sleep(pauseMs);
        }
      };
      await push(4, 20);
      await receiver.until((r) => r.distinct().size === expected.length, 15_000);

      const before = await hookMetrics(demo);
      const faultAt = performance.now();
      apply(proxy, fault);
      await push(10, 80); // pushes go on while the endpoint cannot be reached
      await sleep(Math.max(0, FAULT_MS - (performance.now() - faultAt)));
      const during = await hookMetrics(demo);
      const restoredAt = performance.now();
      // Time to recover: until every event accepted before the restore has arrived.
      const acceptedBefore = [...expected];
      let recoveredMs: number | undefined;
      const recovered = receiver
        .until((r) => acceptedBefore.every((k) => r.events().some((e) => opKey(e) === k)), 30_000)
        .then(() => (recoveredMs = performance.now() - restoredAt));
      proxy.restore();
      await push(4, 20);
      await receiver.until((r) => expected.every((k) => r.events().some((e) => opKey(e) === k)), 30_000);
      await recovered;
      // Negative window: anything sent again late would arrive by now.
      await sleep(500);
      await waitFor(async () => (await hookMetrics(demo!)).Pending === 0, { timeoutMs: 5_000 });
      const after = await hookMetrics(demo);

      const received = receiver.events();
      const t = tally(expected, received.map(opKey));
      // Duplicates (by event id) only of events first received around the fault: a request
      // the receiver took whose answer the fault swallowed.
      const firstArrival = new Map<string, number>();
      for (const d of receiver.deliveries) for (const e of d.events) if (!firstArrival.has(e.id)) firstArrival.set(e.id, d.receivedAt);
      const ids = received.map((e) => e.id);
      const dupIds = [...new Set(ids.filter((id, i) => ids.indexOf(id) !== i))];
      // A stall (or trickle) of answers lets every attempt through: each may be taken again. Any other
      // fault can only swallow the answer to the request under way when it began.
      const windowEnd = fault.endsWith('-answers') ? restoredAt + TIMEOUT_MS : faultAt;
      const dupOutsideFault = dupIds.filter((id) => firstArrival.get(id)! < faultAt - TIMEOUT_MS || firstArrival.get(id)! > windowEnd);
      report(`endpoint-link/${fault}`, {
        operations: expected.length,
        received: t.received,
        distinct: t.distinct,
        duplicates: t.duplicates,
        duplicateIds: dupIds.length,
        orderKept: t.orderKept,
        missing: t.missing.length,
        recoverMs: Math.round(recoveredMs!),
        requests: receiver.deliveries.length,
        failedAttemptsDuringFault: during.Failures + during.Errors - before.Failures - before.Errors,
        connectionsDuringFault: proxy.accepted[fault === 'cut' ? 'cut' : fault.startsWith('stall') ? 'stall' : 'trickle'],
      });

      expect(t.missing).toEqual([]);
      expect(t.unexpected).toEqual([]);
      expect(t.orderKept).toBe(true);
      expect(new Set(ids).size).toBe(expected.length); // one id per operation
      expect(dupOutsideFault).toEqual([]);
      // The endpoint's deadline fired (or the link refused): attempts failed during the fault and were retried.
      expect(during.Failures + during.Errors - before.Failures - before.Errors).toBeGreaterThanOrEqual(fault === 'cut' ? 1 : Math.floor(FAULT_MS / TIMEOUT_MS / 2));
      expect(after).toMatchObject({ Pending: 0, State: 'closed' });
      expect(after.Successes).toBeGreaterThanOrEqual(expected.length);
    },
    60_000,
  );
});
