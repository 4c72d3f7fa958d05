import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

/** A full collection now, as `global.gc()` with `--expose-gc` (turned on here for the process). */
export function collectGarbage(): void {
  setFlagsFromString('--expose-gc');
  (runInNewContext('gc') as () => void)();
}

/**
 * A full collection after the current turn of the event loop: a WeakRef made in a turn
 * keeps its target alive until that turn ends.
 */
export async function collectGarbageNextTurn(): Promise<void> {
  await new Promise((resolve) => setImmediate(resolve));
  collectGarbage();
}
