// LateEnds ends each response once its events are stored, or at its deadline. Its one
// timer stays armed when nothing waits (no timer per response): a wait that begins after
// the others settled must still end at its own deadline, not at the earlier one the timer
// was set for.
import { LateEnds } from '../../lib/emit/middleware';

const never = new Promise<Error | undefined>(() => undefined);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('LateEnds', () => {
  it('ends a wait with what the store answered, at once', async () => {
    const ends = new LateEnds(1000);
    const refused = new Error('refused');
    const got = await new Promise((resolve) => ends.wait(Promise.resolve(refused), resolve));
    expect(got).toBe(refused);
  });

  it('ends a wait the store never answers at its deadline, once', async () => {
    const ends = new LateEnds(60);
    const calls: unknown[] = [];
    const started = performance.now();
    ends.wait(never, (r) => calls.push([r, performance.now() - started]));
    await sleep(200);
    expect(calls).toHaveLength(1);
    expect((calls[0] as [unknown, number])[0]).toBeUndefined();
    expect((calls[0] as [unknown, number])[1]).toBeGreaterThanOrEqual(59);
  });

  it('ends a later wait at its own deadline when the timer was armed for a settled one', async () => {
    const ends = new LateEnds(100);
    await new Promise((resolve) => ends.wait(Promise.resolve(undefined), resolve)); // arms the timer for ~100ms
    await sleep(50);
    const started = performance.now();
    let endedAfter: number | undefined;
    ends.wait(never, () => (endedAfter = performance.now() - started));
    await sleep(80); // past the first deadline, before this one's
    expect(endedAfter).toBeUndefined();
    await sleep(120);
    expect(endedAfter).toBeGreaterThanOrEqual(99);
  });
});
