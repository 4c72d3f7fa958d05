import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import request from 'supertest';
import { createRegistryApp, type RegistryAppOptions } from '../../demo-registry/app';
import { FilesystemStorage } from '../../demo-registry/storage';

/** A registry app on storage in a fresh temp dir; `cleanup` removes the dir. */
export interface RegistryFixture {
  dir: string;
  storage: FilesystemStorage;
  app: ReturnType<typeof createRegistryApp>;
  client: ReturnType<typeof request>;
  cleanup(): Promise<void>;
}

export async function registryFixture(options: Omit<RegistryAppOptions, 'storage'> = {}): Promise<RegistryFixture> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'demo-registry-'));
  const storage = new FilesystemStorage(path.join(dir, 'root'));
  await storage.init();
  const app = createRegistryApp({ storage, deleteEnabled: true, ...options });
  return { dir, storage, app, client: request(app), cleanup: () => rm(dir, { recursive: true, force: true }) };
}
