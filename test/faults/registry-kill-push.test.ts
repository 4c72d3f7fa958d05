// Fault injection, scenario 3: the demo registry (a real process, SQLite queue) is
// SIGKILLed at random points of a skopeo push, restarted on the same storage root and
// queue file, and skopeo pushes again, as a user would. skopeo talks to it through an
// HTTP proxy that keeps its address across restarts and records what skopeo was told.
// Then: every operation skopeo saw succeed has its event; whatever is in storage has an
// event by the end (an item stored without one can only be the request in flight at the
// kill); the first arrivals keep the order in which the operations took effect; and
// duplicates carry the same id. The points are drawn from a seed, printed: FAULT_SEED=<seed>
// repeats a run.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { tinyImage, writeOciLayout } from '../../demo-registry/sample-image';
import type { Event } from '../../lib';
import { aboutKeys, demoConfig, hookMetrics, opKey, startDemo, type Demo } from '../helpers/fault-demo';
import { closeFaultRig, openFaultRig } from '../helpers/fault-rig';
import { faultSeed, RecordingReceiver, report, seededRandom } from '../helpers/fault-receiver';
import { exchangeKey, readStored } from '../helpers/fault-storage';
import { HttpRecordingProxy, type Exchange } from '../helpers/http-recording-proxy';
import { sleep, waitFor } from '../helpers/wait';

const run = promisify(execFile);
const SKOPEO = '/usr/bin/skopeo';
const ROUNDS = 3;

(existsSync(SKOPEO) ? describe : describe.skip)('faults: the registry SIGKILLed during a skopeo push', () => {
  let dir: string;
  let receiver: RecordingReceiver;
  let proxy: HttpRecordingProxy;
  let demo: Demo | undefined;
  beforeEach(async () => {
    ({ dir, receiver, proxy } = await openFaultRig('faults-kill-push-', (r) => new HttpRecordingProxy().start()));
  });
  afterEach(async () => {
    await closeFaultRig({ dir, receiver, proxy }, demo);
    demo = undefined;
  });

  it(`loses no event of an operation that took effect, over ${ROUNDS} kills at random points`, async () => {
    const seed = faultSeed();
    console.log(`[faults] registry-kill-push: seed ${seed} (FAULT_SEED=${seed} repeats these kill points)`);
    const random = seededRandom(seed);
    const root = path.join(dir, 'registry');
    const config = demoConfig({ root, queue: { type: 'sqlite', path: path.join(dir, 'queue.db') }, endpointUrl: receiver.url });
    const start = async () => {
      demo = await startDemo(dir, config);
      proxy.target = Number(new URL(demo.url).port);
    };
    const skopeoCopy = (layout: string, repo: string) =>
      run(SKOPEO, ['copy', '--retry-times', '0', '--dest-tls-verify=false', `oci:${layout}:v1`, `docker://${proxy.host}/${repo}:v1`], { timeout: 60_000 }).then(
        () => 'ok' as const,
        (err: Error) => `failed: ${(/msg="(.*)/.exec(err.message.replace(/\s+/g, ' '))?.[1] ?? err.message).slice(0, 120)}`,
      );

    await start();
    const rounds: Array<Record<string, unknown>> = [];
    const problems: string[] = [];
    const repos: string[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      const repo = `faults/kill-push-${round}`;
      repos.push(repo);
      const image = tinyImage({ layers: [0, 1, 2].map((l) => ({ [`l${l}.txt`]: `seed ${seed} round ${round} layer ${l}\n` })) });
      const layout = path.join(dir, `oci-${round}`);
      await writeOciLayout(layout, [{ tag: 'v1', image }]);

      // The kill point: right after the k-th request of this push reaches the registry, plus a few ms.
      const first = proxy.exchanges.length;
      const k = 1 + Math.floor(random() * 16);
      const extraMs = Math.floor(random() * 25);
      const victim = demo!;
      let killedAt: number | undefined;
      let killedAfter: Exchange | undefined;
      const kill = () => {
        if (killedAt !== undefined) return;
        killedAt = performance.now();
        killedAfter = proxy.exchanges[proxy.exchanges.length - 1];
        victim.proc.child.kill('SIGKILL');
      };
      proxy.onRequest = (x) => {
        if (x.index - first + 1 === k) setTimeout(kill, extraMs);
      };
      const firstTry = skopeoCopy(layout, repo);
      const exited = new Promise<string>((resolve) => victim.proc.child.once('exit', () => resolve('killed')));
      const firstResult = await Promise.race([firstTry, exited]);
      if (firstResult !== 'killed') kill(); // the push ended before the k-th request: the kill comes right after it
      expect(await victim.proc.stop('SIGKILL')).toBe('SIGKILL');
      proxy.onRequest = () => undefined;
      const inStorageAtKill = readStored(root, repo);

      // Restart on the same root and queue file; skopeo's first try ends however it ends, then a second one must succeed.
      const restartAt = performance.now();
      await start();
      const firstOutcome = await firstTry;
      const pendingAfterRestart = (await hookMetrics(demo!)).Pending;
      // What was stored at the kill and has no push (or mount) event once the backlog is out:
      // it may only be the operation in flight at the kill, which skopeo never saw succeed.
      await waitFor(async () => (await hookMetrics(demo!)).Pending === 0, { timeoutMs: 15_000 });
      const recoverMs = performance.now() - restartAt;
      const pushed = new Set(receiver.events().filter((e) => e.action === 'push' || e.action === 'mount').flatMap(aboutKeys));
      const storedWithoutEvent = [...inStorageAtKill.blobs, ...inStorageAtKill.manifests, ...inStorageAtKill.tags].filter((item) => !pushed.has(item));
      const acked = new Set(proxy.succeeded().map(exchangeKey).filter(Boolean) as string[]);
      for (const item of storedWithoutEvent) {
        const [itemRepo, kind, ref] = item.split(' ');
        if (acked.has(`push ${itemRepo} ${kind} ${ref}`)) problems.push(`round ${round}: ${item} was answered 2xx and stored, yet no push event arrived`);
      }
      const secondOutcome = firstOutcome === 'ok' ? 'not needed' : await skopeoCopy(layout, repo);
      expect(secondOutcome).not.toMatch(/error|fail/i);
      rounds.push({
        round,
        killAfterRequest: k,
        extraMs,
        killedDuring: killedAfter ? `${killedAfter.method} ${killedAfter.url.replace(/\?.*/, '')}` : 'after the push',
        firstTry: firstOutcome,
        secondTry: secondOutcome,
        storedAtKill: inStorageAtKill.blobs.length + inStorageAtKill.manifests.length + inStorageAtKill.tags.length,
        storedWithoutEvent,
        pendingAfterRestart,
        restartToDeliveredMs: Math.round(recoverMs),
      });
    }

    // Every operation skopeo saw succeed has its event.
    await receiver.until((r) => {
      const got = new Set(r.events().map(opKey));
      return proxy.succeeded().every((x) => !exchangeKey(x) || got.has(exchangeKey(x)!));
    }, 20_000);
    await sleep(300); // negative window: anything sent twice would arrive by now
    await waitFor(async () => (await hookMetrics(demo!)).Pending === 0, { timeoutMs: 10_000 });
    const received = receiver.events();
    const ids = received.map((e) => e.id);
    const byId = new Map<string, Event>();
    const sameIdDifferentEvent = received.filter((e) => {
      const seen = byId.get(e.id);
      byId.set(e.id, e);
      return seen !== undefined && JSON.stringify(seen) !== JSON.stringify(e);
    });

    // Whatever is in storage now has an event about it.
    const about = new Set(received.flatMap(aboutKeys));
    const stored = repos.map((r) => readStored(root, r));
    const uncovered = stored.flatMap((s) => [...s.blobs, ...s.manifests, ...s.tags]).filter((item) => !about.has(item));

    // Order: an operation answered before another started has its event first.
    const firstArrival = new Map<string, number>();
    received.forEach((e, i) => firstArrival.has(opKey(e)) || firstArrival.set(opKey(e), i));
    const idsPerKey = new Map<string, Set<string>>();
    for (const e of received) idsPerKey.set(opKey(e), (idsPerKey.get(opKey(e)) ?? new Set()).add(e.id));
    const ok = proxy.succeeded().filter((x) => exchangeKey(x) && idsPerKey.get(exchangeKey(x)!)?.size === 1);
    const inversions: string[] = [];
    for (const a of ok)
      for (const b of ok)
        if (a.answeredAt! < b.startedAt && firstArrival.get(exchangeKey(a)!)! > firstArrival.get(exchangeKey(b)!)!)
          inversions.push(`${exchangeKey(a)} answered before ${exchangeKey(b)} started, but arrived after it`);

    report('registry-kill-push', {
      seed,
      rounds,
      operationsAcknowledged: proxy.succeeded().filter((x) => exchangeKey(x)).length,
      received: ids.length,
      distinct: new Set(ids).size,
      duplicates: ids.length - new Set(ids).size,
      storedItems: stored.reduce((n, s) => n + s.blobs.length + s.manifests.length + s.tags.length, 0),
      uncovered: uncovered.length,
      inversions: inversions.length,
    });
    expect(problems).toEqual([]);
    expect(uncovered).toEqual([]);
    expect(inversions).toEqual([]);
    expect(sameIdDifferentEvent).toEqual([]); // duplicates only by id: the same event sent again
    await demo!.proc.stop('SIGTERM');
    demo = undefined;
  }, 120_000);
});
