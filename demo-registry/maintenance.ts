// storage.maintenance.uploadpurging: abandoned uploads are removed, as Distribution's
// upload purger does. An upload lives in repositories/<name>/_uploads/<id>/ (see
// storage.ts) with a `startedat` file holding its start time.
import type { Dirent } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import type { UploadPurgingConfig } from './config';
import type { Logger } from './log';
import { goDuration } from './log';

/** An upload found on disk, and when it started. */
export interface FoundUpload {
  repository: string;
  id: string;
  dir: string;
  startedAt: Date;
}

/** When an upload started: its `startedat` file, else the directory's modification time. */
async function startedAt(dir: string): Promise<Date | undefined> {
  try {
    const text = (await fs.readFile(path.join(dir, 'startedat'), 'utf8')).trim();
    const date = new Date(text);
    if (!Number.isNaN(date.getTime())) return date;
  } catch {
    // no startedat: fall back to the directory's time
  }
  try {
    return (await fs.stat(dir)).mtime;
  } catch {
    return undefined; // gone meanwhile
  }
}

/** Every upload under `root` (the storage's root directory). */
export async function findUploads(root: string): Promise<FoundUpload[]> {
  const found: FoundUpload[] = [];
  const walk = async (dir: string, name: string): Promise<void> => {
    let entries: Dirent[];
    try {
      entries = await fs.readdir(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      if (!e.isDirectory()) continue;
      if (e.name === '_uploads') {
        for (const upload of await fs.readdir(path.join(dir, e.name), { withFileTypes: true }).catch(() => [] as Dirent[])) {
          if (!upload.isDirectory()) continue;
          const uploadDir = path.join(dir, e.name, upload.name);
          const started = await startedAt(uploadDir);
          if (started) found.push({ repository: name, id: upload.name, dir: uploadDir, startedAt: started });
        }
      } else if (!e.name.startsWith('_')) {
        await walk(path.join(dir, e.name), name ? `${name}/${e.name}` : e.name);
      }
    }
  };
  await walk(path.join(root, 'repositories'), '');
  return found;
}

/**
 * Removes the uploads under `root` that started more than `ageMs` before `now` (only
 * lists them with `dryRun`), except those `inUse` says a request is writing to; resolves
 * to those it removed (or would have).
 */
export async function purgeUploads(
  root: string,
  options: { ageMs: number; dryRun: boolean; now?: Date; inUse?(repository: string, id: string): boolean },
): Promise<FoundUpload[]> {
  const cutoff = (options.now ?? new Date()).getTime() - options.ageMs;
  const old = (await findUploads(root)).filter((u) => u.startedAt.getTime() < cutoff && !options.inUse?.(u.repository, u.id));
  if (!options.dryRun) {
    for (const u of old) await fs.rm(u.dir, { recursive: true, force: true });
  }
  return old;
}

/** A running purger; `stop()` ends it (a purge in progress finishes first). */
export interface UploadPurger {
  stop(): Promise<void>;
}

export interface UploadPurgerOptions {
  /** Whether a request is writing to an upload: such an upload is left for a later purge. @default none is */
  inUse?(repository: string, id: string): boolean;
  /** Picks the first purge's delay. @default Math.random */
  random?(): number;
}

/**
 * Purges every `intervalMs`. As Distribution, the first purge waits a random whole number
 * of minutes below 60 (so registries sharing storage do not all purge at once), but never
 * longer than one interval.
 */
export function startUploadPurger(root: string, config: UploadPurgingConfig, logger: Logger, options: UploadPurgerOptions = {}): UploadPurger {
  const random = options.random ?? Math.random;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> = Promise.resolve();
  let stopped = false;
  const run = () => {
    running = (async () => {
      try {
        logger.debug('upload purge starting', { olderThan: goDuration(config.ageMs * 1e6), actuallyDelete: !config.dryRun });
        const purged = await purgeUploads(root, { ageMs: config.ageMs, dryRun: config.dryRun, ...(options.inUse ? { inUse: options.inUse } : {}) });
        for (const u of purged) {
          logger.info(config.dryRun ? 'upload purge (dry run): would remove an abandoned upload' : 'upload purge: removed an abandoned upload', {
            repository: u.repository,
            upload: u.id,
            startedat: u.startedAt.toISOString(),
          });
        }
        logger.debug('upload purge finished', { count: purged.length });
      } catch (err) {
        logger.error(`upload purge failed: ${(err as Error).message}`);
      }
    })();
    void running.then(() => {
      if (!stopped) schedule(config.intervalMs);
    });
  };
  const schedule = (ms: number) => {
    timer = setTimeout(run, ms);
    timer.unref();
  };
  const firstMs = Math.min(config.intervalMs, Math.floor(random() * 60) * 60_000);
  logger.info(`starting upload purge in ${goDuration(firstMs * 1e6)}`);
  schedule(firstMs);
  return {
    stop: async () => {
      stopped = true;
      clearTimeout(timer);
      await running;
    },
  };
}
