import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { stringify } from 'yaml';

const ROOT = path.resolve(__dirname, '..', '..');
/**
 * tsx's CommonJS hook, loaded into one node process. (The `tsx` command runs the program
 * in a child of its own: a SIGKILL would reach only the wrapper and leave the registry
 * running, which would make a crash test pass without a crash.)
 */
export const TSX_HOOK = require.resolve('tsx/cjs');

/** Spawns a TypeScript program of this repository as a single node process. */
export function spawnTs(file: string, args: string[], options: Parameters<typeof spawn>[2] = {}): ChildProcess {
  return spawn(process.execPath, ['-r', TSX_HOOK, path.resolve(ROOT, file), ...args], options);
}

/** A free TCP port on 127.0.0.1 (free when asked; tests bind it right after). */
export async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((r) => server.close(r));
  return port;
}

/** The demo registry as a separate process, started the way a user starts it. */
export class RegistryProcess {
  url = '';
  readonly stderr: string[] = [];
  private constructor(readonly child: ChildProcess) {}

  /** Writes `config` as config.yml in `dir` and runs `demo-registry/main.ts --config` there. */
  static async start(dir: string, config: object, name = 'config.yml'): Promise<RegistryProcess> {
    const file = path.join(dir, name);
    writeFileSync(file, stringify(config));
    const child = spawnTs('demo-registry/main.ts', ['--config', file], { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
    const proc = new RegistryProcess(child);
    const lines = createInterface({ input: child.stderr! });
    proc.url = await new Promise<string>((resolve, reject) => {
      lines.on('line', (line) => {
        proc.stderr.push(line);
        const m = line.match(/listening on (http:\/\/\S+?)(,|$)/);
        if (m) resolve(m[1]);
      });
      child.once('exit', (code) => reject(new Error(`registry exited with ${code} before listening:\n${proc.stderr.join('\n')}`)));
    });
    return proc;
  }

  /** Sends a signal and resolves with the exit code (or the signal that ended it). */
  stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<number | string> {
    return new Promise((resolve) => {
      if (this.child.exitCode !== null || this.child.signalCode !== null) return resolve(this.child.exitCode ?? this.child.signalCode!);
      this.child.once('exit', (code, sig) => resolve(code ?? sig!));
      this.child.kill(signal);
    });
  }
}
