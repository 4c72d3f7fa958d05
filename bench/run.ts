// `npm run bench`: every benchmark of the project, in one run, printed as a table.
// Set BENCH_ONLY=dispatch (comma-separated names) to run some of them.
import { benchBrokers } from './brokers';
import { benchDelivery } from './delivery';
import { benchConsole } from './console';
import { benchDispatch } from './dispatch';
import { benchFeed } from './feed';
import { benchDistribution } from './distribution';
import { benchReceiver } from './receiver';
import { benchRegistry } from './registry';
import { benchStores } from './stores';
import { benchSpool } from './spool';
import { report, type Result } from './util';

const suites: Record<string, () => Promise<Result[]>> = {
  dispatch: benchDispatch,
  distribution: benchDistribution,
  receiver: benchReceiver,
  registry: benchRegistry,
  stores: benchStores,
  spool: benchSpool,
  delivery: benchDelivery,
  console: benchConsole,
  brokers: benchBrokers,
  feed: benchFeed,
};

async function main(): Promise<void> {
  const only = process.env.BENCH_ONLY?.split(',').map((s) => s.trim());
  console.log(`registry-notifications benchmarks — node ${process.version}, ${new Date().toISOString()}`);
  for (const [name, run] of Object.entries(suites)) {
    if (only && !only.includes(name)) continue;
    console.log(`\n[${name}]`);
    report(await run());
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
