/** jest.config.js's testTimeout: the limit assumed when jest's own state cannot be read. */
const CONFIGURED_TEST_TIMEOUT_MS = 30_000;
/** Share of a test's time limit a default wait may use, leaving the rest to report and clean up. */
const SHARE_OF_LIMIT = 0.8;

interface CircusState {
  testTimeout?: number;
  currentlyRunningTest?: { timeout?: number; startedAt?: number | null } | null;
}

const now: () => number = (globalThis as Record<symbol, (() => number) | undefined>)[Symbol.for('jest-native-now')] ?? Date.now;

/**
 * Milliseconds a wait may take before the running test (or hook) would time out, less a
 * margin: 80% of its time limit (the `it` timeout argument, else jest's testTimeout),
 * minus the time since the test started. Jest 29 has no `jest.getTimeout()`, so this reads
 * jest-circus's state; where that cannot be found it assumes jest.config.js's 30 s.
 */
export function testTimeLeftMs(): number {
  const key = Object.getOwnPropertySymbols(globalThis).find((s) => s.description === 'JEST_STATE_SYMBOL');
  const state = key ? (globalThis as Record<symbol, CircusState | undefined>)[key] : undefined;
  const test = state?.currentlyRunningTest;
  const limit = test?.timeout || state?.testTimeout || CONFIGURED_TEST_TIMEOUT_MS;
  const elapsed = test?.startedAt ? now() - test.startedAt : 0;
  return Math.max(0, Math.floor(limit * SHARE_OF_LIMIT) - elapsed);
}

export interface WaitForOptions {
  /** Longest wait, in ms. @default testTimeLeftMs() */
  timeoutMs?: number;
  /** Pause between checks, in ms. @default 10 */
  intervalMs?: number;
  /** What was observed instead, for the timeout's message; asked once, on timeout. */
  describe?: () => unknown;
}

/**
 * Resolves once `condition` returns (or resolves to) true, checking at once and then every
 * `intervalMs`. Rejects after `timeoutMs` with an Error naming the condition and what
 * `describe` observed; a condition that throws rejects the wait with its error at once.
 */
export async function waitFor(condition: () => boolean | Promise<boolean>, options: WaitForOptions = {}): Promise<void> {
  const timeoutMs = options.timeoutMs ?? testTimeLeftMs();
  const intervalMs = options.intervalMs ?? 10;
  const deadline = now() + timeoutMs;
  for (;;) {
    const pending = Symbol('pending');
    let timer: NodeJS.Timeout | undefined;
    const met = await Promise.race([
      Promise.resolve(condition()),
      new Promise<typeof pending>((resolve) => (timer = setTimeout(() => resolve(pending), Math.max(0, deadline - now())))),
    ]).finally(() => clearTimeout(timer));
    if (met === true) return;
    const left = deadline - now();
    if (met === pending || left <= 0) {
      const observed = options.describe ? await options.describe() : '(no description given)';
      const shown = typeof observed === 'string' ? observed : JSON.stringify(observed);
      throw new Error(`waitFor: still waiting after ${timeoutMs}ms for ${condition.toString()}; observed ${shown}`);
    }
    await sleep(Math.min(intervalMs, left));
  }
}

/**
 * A fixed pause. Waits on a condition use `waitFor`; this is for the windows in which a
 * test checks that something does NOT happen.
 */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
