// Runs sqlite-consumer-child.ts, a registry-like consumer of a SqliteStore queue, as a
// real process, and collects what it prints. Used by the sqlite-*.test.ts files.
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';

const running = new Set<Consumer>();

/** Kills (SIGKILL) every consumer still running; for afterEach. */
export async function killConsumers(): Promise<void> {
  await Promise.all([...running].map((c) => c.stop('SIGKILL')));
}

/** A registry-like consumer process (sqlite-consumer-child.ts) and what it printed. */
export class Consumer {
  readonly delivered: string[] = [];
  readonly appended: string[] = [];
  private readonly child: ChildProcess;
  private readonly exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private exited = false;
  private opened = false;
  /** Whether it printed `saved` (the `pause` option). */
  saved = false;
  private readonly watchers = new Set<() => void>();

  constructor(file: string, options: Record<string, number | string> = {}) {
    this.child = spawn(
      process.execPath,
      ['-r', 'tsx/cjs', path.join(__dirname, 'sqlite-consumer-child.ts'), file, 'hooks', JSON.stringify(options)],
      { cwd: path.resolve(__dirname, '../..'), stdio: ['ignore', 'pipe', 'inherit'] },
    );
    running.add(this);
    let buffer = '';
    this.child.stdout!.on('data', (chunk: Buffer) => {
      buffer += chunk.toString('utf8');
      const lines = buffer.split('\n');
      buffer = lines.pop()!;
      for (const line of lines) {
        const [what, id] = line.split(' ');
        if (what === 'delivered') this.delivered.push(id);
        else if (what === 'appended') this.appended.push(id);
        else if (what === 'open') this.opened = true;
        else if (what === 'saved') this.saved = true;
      }
      for (const w of [...this.watchers]) w();
    });
    this.exit = new Promise((resolve) =>
      this.child.on('exit', (code, signal) => {
        this.exited = true;
        running.delete(this);
        resolve({ code, signal });
        for (const w of [...this.watchers]) w();
      }),
    );
  }

  get pid(): number {
    return this.child.pid!;
  }

  /** Resolves once `pred` holds; rejects, saying what it waited for, if the process ends first. */
  until(pred: (c: this) => boolean, what: string): Promise<void> {
    return new Promise((resolve, reject) => {
      const check = () => {
        if (pred(this)) {
          this.watchers.delete(check);
          resolve();
        } else if (this.exited) {
          this.watchers.delete(check);
          reject(new Error(`consumer ${this.pid} exited while waiting for ${what}; it delivered ${this.delivered.length}`));
        }
      };
      this.watchers.add(check);
      check();
    });
  }

  untilOpen(): Promise<void> {
    return this.until((c) => c.opened, 'its store to open');
  }

  async stop(signal: NodeJS.Signals): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    if (!this.exited) this.child.kill(signal);
    return this.exit;
  }
}

