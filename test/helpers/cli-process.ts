import type { ChildProcess } from 'node:child_process';
import path from 'node:path';
import { spawnTs } from './registry-process';

const ROOT = path.resolve(__dirname, '..', '..');

/** A command line of `lib/bin/` running as a child process, its output collected line by line. */
export interface RunningCli {
  child: ChildProcess;
  stdout: string[];
  stderr: string[];
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

const children = new Set<ChildProcess>();

/** Spawns `lib/bin/<script>.ts` as a user would and collects its output line by line. */
export function runCli(script: string, args: string[]): RunningCli {
  const child = spawnTs(path.join(ROOT, 'lib/bin', `${script}.ts`), args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  const stdout: string[] = [];
  const stderr: string[] = [];
  const collect = (stream: NodeJS.ReadableStream, into: string[]) => {
    let rest = '';
    stream.setEncoding('utf8');
    stream.on('data', (chunk: string) => {
      const lines = (rest + chunk).split('\n');
      rest = lines.pop() ?? '';
      into.push(...lines);
    });
  };
  collect(child.stdout!, stdout);
  collect(child.stderr!, stderr);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('exit', (code, signal) => {
      children.delete(child);
      resolve({ code, signal });
    }),
  );
  return { child, stdout, stderr, exited };
}

/** Kills every command line still running (for `afterAll`). */
export function killClis(): void {
  for (const child of children) child.kill('SIGKILL');
}
