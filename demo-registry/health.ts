// `health:`, as Distribution runs it: checks on intervals; while one fails, every API
// request is answered 503 UNAVAILABLE, and the debug server's /debug/health lists them.
import { existsSync } from 'node:fs';
import fs from 'node:fs/promises';
import net from 'node:net';
import type { NextFunction, Request, RequestHandler, Response } from 'express';

/** `health`, normalized. Durations in ms; a threshold of 0 fails on the first failed check. */
export interface HealthConfig {
  storagedriver?: { intervalMs: number; threshold: number };
  file: Array<{ file: string; intervalMs: number }>;
  http: Array<{ uri: string; headers: Record<string, string[]>; statuscode: number; timeoutMs: number; intervalMs: number; threshold: number }>;
  tcp: Array<{ addr: string; timeoutMs: number; intervalMs: number; threshold: number }>;
}

export const HEALTH_DEFAULTS = { intervalMs: 10_000, threshold: 0, statuscode: 200, timeoutMs: 1_000 } as const;

/** Whether `config` registers any check. */
export function hasHealthChecks(config: HealthConfig): boolean {
  return config.storagedriver !== undefined || config.file.length + config.http.length + config.tcp.length > 0;
}

interface Check {
  name: string;
  intervalMs: number;
  threshold: number;
  run(): Promise<void>;
}

/** The registered checks and which of them fail now. */
export class HealthChecks {
  private readonly failing = new Map<string, string>();
  private readonly timers: NodeJS.Timeout[] = [];

  constructor(private readonly checks: Check[]) {}

  /** Builds the checks of `config`; `root` is the storage's root directory (the storage driver check stats it). */
  static fromConfig(config: HealthConfig, root: string, driver: string): HealthChecks {
    const checks: Check[] = [];
    if (config.storagedriver) {
      checks.push({
        name: `storagedriver_${driver}`,
        ...config.storagedriver,
        run: async () => {
          await fs.stat(root);
        },
      });
    }
    for (const f of config.file) {
      checks.push({
        name: f.file,
        intervalMs: f.intervalMs,
        threshold: 0,
        run: async () => {
          if (existsSync(f.file)) throw new Error('file exists');
        },
      });
    }
    for (const h of config.http) {
      checks.push({
        name: h.uri,
        intervalMs: h.intervalMs,
        threshold: h.threshold,
        run: async () => {
          const headers = new Headers();
          for (const [k, vs] of Object.entries(h.headers)) for (const v of vs) headers.append(k, v);
          const res = await fetch(h.uri, { method: 'HEAD', headers, signal: AbortSignal.timeout(h.timeoutMs) });
          if (res.status !== h.statuscode) throw new Error(`downstream service returned unexpected status: ${res.status}`);
        },
      });
    }
    for (const t of config.tcp) {
      checks.push({
        name: t.addr,
        intervalMs: t.intervalMs,
        threshold: t.threshold,
        run: () =>
          new Promise<void>((resolve, reject) => {
            const i = t.addr.lastIndexOf(':');
            const socket = net.connect({ host: t.addr.slice(0, i).replace(/^\[|\]$/g, '') || '127.0.0.1', port: Number(t.addr.slice(i + 1)), timeout: t.timeoutMs });
            socket.once('connect', () => {
              socket.destroy();
              resolve();
            });
            socket.once('timeout', () => {
              socket.destroy();
              reject(new Error('connection timed out'));
            });
            socket.once('error', reject);
          }),
      });
    }
    return new HealthChecks(checks);
  }

  /** Runs each check every interval (the first after one interval, as Distribution). */
  start(): void {
    for (const check of this.checks) {
      let failures = 0;
      const timer = setInterval(() => {
        check.run().then(
          () => {
            failures = 0;
            this.failing.delete(check.name);
          },
          (err: Error) => {
            failures += 1;
            // As Distribution: failing after `threshold` failures in a row (0: the first).
            if (failures >= check.threshold) this.failing.set(check.name, err.message);
          },
        );
      }, check.intervalMs);
      timer.unref();
      this.timers.push(timer);
    }
  }

  stop(): void {
    for (const t of this.timers) clearInterval(t);
  }

  /** The failing checks, by name, with their last error. */
  status(): Record<string, string> {
    return Object.fromEntries(this.failing);
  }

  /** Answers every request 503 UNAVAILABLE while a check fails. */
  middleware(): RequestHandler {
    return (_req: Request, res: Response, next: NextFunction) => {
      if (this.failing.size === 0) return next();
      res
        .status(503)
        .set('Docker-Distribution-API-Version', 'registry/2.0')
        .json({ errors: [{ code: 'UNAVAILABLE', message: 'service unavailable', detail: 'health check failed: please see /debug/health' }] });
    };
  }

  /** `GET /debug/health`: the failing checks; 503 when there are any. */
  handler(): RequestHandler {
    return (_req: Request, res: Response) => {
      const status = this.status();
      res.status(Object.keys(status).length > 0 ? 503 : 200).json(status);
    };
  }
}
