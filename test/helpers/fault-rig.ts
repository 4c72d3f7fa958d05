import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Demo } from './fault-demo';
import { RecordingReceiver } from './fault-receiver';

/** What every fault suite starts each test with: a folder, a receiver and a proxy in front of it. */
export interface FaultRig<P> {
  dir: string;
  receiver: RecordingReceiver;
  proxy: P;
}

/** Makes a rig: a temporary folder named with `prefix`, a recording receiver, and the proxy `proxyFor` starts. */
export async function openFaultRig<P>(prefix: string, proxyFor: (receiver: RecordingReceiver) => Promise<P>): Promise<FaultRig<P>> {
  const dir = mkdtempSync(path.join(os.tmpdir(), prefix));
  const receiver = await new RecordingReceiver().start();
  return { dir, receiver, proxy: await proxyFor(receiver) };
}

/** Kills the demo the test started, if any, stops the proxy and the receiver, and removes the folder. */
export async function closeFaultRig(rig: FaultRig<{ stop(): Promise<void> }>, demo: Demo | undefined): Promise<void> {
  await demo?.proc.stop('SIGKILL');
  await rig.proxy.stop();
  await rig.receiver.stop();
  rmSync(rig.dir, { recursive: true, force: true });
}
