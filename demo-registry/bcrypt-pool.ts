import os from 'node:os';
import { Worker } from 'node:worker_threads';

// bcryptjs is plain JavaScript: a comparison at cost 10 is tens of milliseconds of CPU,
// which on the event loop would hold up every other request. The comparisons run in
// worker threads instead; the worker is a script of its own (not a .ts file), so it runs
// the same under node, tsx and jest.
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const bcrypt = require(workerData.bcryptjs);
parentPort.on('message', ({ password, hash }) => {
  try {
    parentPort.postMessage({ ok: bcrypt.compareSync(password, hash) });
  } catch (err) {
    parentPort.postMessage({ error: String((err && err.message) || err) });
  }
});
`;

/** Threads of the default pool: one core is left to the event loop, at most 4. */
export const DEFAULT_BCRYPT_POOL_SIZE = Math.max(1, Math.min(4, os.availableParallelism() - 1));

interface Job {
  password: string;
  hash: string;
  resolve(ok: boolean): void;
  reject(err: Error): void;
}

interface PoolWorker {
  worker: Worker;
  job?: Job;
  /** Whether it ever answered: one that dies before is not replaced (it would die again). */
  answered: boolean;
}

/**
 * bcrypt comparisons in a small pool of worker threads, first come first served. The
 * threads start at the first comparison and never keep the process alive.
 */
export class BcryptPool {
  readonly size: number;
  private readonly workers: PoolWorker[] = [];
  private readonly queue: Job[] = [];
  private compared = 0;
  private closed = false;

  constructor(options: { size?: number } = {}) {
    this.size = Math.max(1, options.size ?? DEFAULT_BCRYPT_POOL_SIZE);
  }

  /** Comparisons started so far (tests read it to see that a request compared a hash). */
  get comparisons(): number {
    return this.compared;
  }

  /** Comparisons waiting for a thread. */
  get waiting(): number {
    return this.queue.length;
  }

  /** Whether `password` matches the bcrypt `hash`, computed off the event loop. */
  compare(password: string, hash: string): Promise<boolean> {
    if (this.closed) return Promise.reject(new Error('bcrypt pool closed'));
    return new Promise<boolean>((resolve, reject) => {
      this.queue.push({ password, hash, resolve, reject });
      this.next();
    });
  }

  /** Ends the threads; comparisons not done are refused. */
  async close(): Promise<void> {
    this.closed = true;
    for (const job of this.queue.splice(0)) job.reject(new Error('bcrypt pool closed'));
    await Promise.all(this.workers.splice(0).map((w) => w.worker.terminate()));
  }

  private next(): void {
    while (this.queue.length > 0) {
      let idle = this.workers.find((w) => w.job === undefined);
      if (!idle) {
        if (this.workers.length >= this.size) return;
        idle = this.spawn();
      }
      const job = this.queue.shift()!;
      idle.job = job;
      // A comparison under way keeps the process alive; an idle thread does not.
      idle.worker.ref();
      this.compared++;
      idle.worker.postMessage({ password: job.password, hash: job.hash });
    }
  }

  private spawn(): PoolWorker {
    const worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { bcryptjs: require.resolve('bcryptjs') } });
    const entry: PoolWorker = { worker, answered: false };
    worker.on('message', (answer: { ok?: boolean; error?: string }) => {
      entry.answered = true;
      const job = entry.job;
      entry.job = undefined;
      worker.unref();
      if (answer.error !== undefined) job?.reject(new Error(`bcrypt: ${answer.error}`));
      else job?.resolve(answer.ok === true);
      this.next();
    });
    const lost = (err: Error) => {
      // A thread that died takes its comparison with it; the others, and a new thread, carry on.
      const i = this.workers.indexOf(entry);
      if (i < 0) return;
      this.workers.splice(i, 1);
      entry.job?.reject(err);
      entry.job = undefined;
      if (!entry.answered && this.workers.length === 0) {
        for (const job of this.queue.splice(0)) job.reject(err);
      }
      if (!this.closed) this.next();
    };
    worker.on('error', lost);
    worker.on('exit', (code) => lost(new Error(`bcrypt worker exited with code ${code}`)));
    this.workers.push(entry);
    return entry;
  }
}

let shared: BcryptPool | undefined;

/** The pool htpasswd authentication uses unless given one. */
export function sharedBcryptPool(): BcryptPool {
  return (shared ??= new BcryptPool());
}
