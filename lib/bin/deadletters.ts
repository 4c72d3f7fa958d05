#!/usr/bin/env node
// Dead letters on the command line, for the durable queues (sqlite, redis):
//   npx registry-notifications-deadletters --config config.yml [--endpoint NAME] list [--limit N]
//   npx registry-notifications-deadletters --config config.yml [--endpoint NAME] replay [--id ID]...
// `list` prints one JSON line per dead letter; `replay` moves them back into the endpoint's
// queue, where a running registry (or the next one to start) delivers them. Exit codes: 0
// done, 1 a store could not be used, 2 bad arguments or configuration.
import { parseArgs } from 'node:util';
import { loadNotificationsConfig } from '../config/load';
import { replayDeadLetters } from '../stores/dead-letter-store';
import type { NotificationsConfig } from '../config/normalize';
import { ConfigError } from '../config/values';
import { createEndpointStores } from '../stores/create-stores';

export const DEADLETTERS_USAGE =
  'usage: deadletters --config FILE [--endpoint NAME] list [--limit N]\n' +
  '       deadletters --config FILE [--endpoint NAME] replay [--id EVENT_ID]...';

/** Arguments the command cannot use; it exits with 2. */
export class DeadLettersUsageError extends Error {
  override readonly name = 'DeadLettersUsageError';
}

export interface DeadLettersArgs {
  config: string;
  endpoint?: string;
  command: 'list' | 'replay';
  limit: number;
  ids?: string[];
}

export function parseDeadLettersArgs(argv: readonly string[]): DeadLettersArgs {
  let parsed;
  try {
    parsed = parseArgs({
      args: [...argv],
      options: {
        config: { type: 'string' },
        endpoint: { type: 'string' },
        limit: { type: 'string' },
        id: { type: 'string', multiple: true },
      },
      allowPositionals: true,
      strict: true,
    });
  } catch (err) {
    throw new DeadLettersUsageError((err as Error).message);
  }
  const { values, positionals } = parsed;
  if (!values.config) throw new DeadLettersUsageError('missing --config: the registry\'s config.yml');
  const [command, ...rest] = positionals;
  if (command !== 'list' && command !== 'replay') {
    throw new DeadLettersUsageError(`expected the command list or replay, got ${command === undefined ? 'nothing' : JSON.stringify(command)}`);
  }
  if (rest.length > 0) throw new DeadLettersUsageError(`unexpected argument ${JSON.stringify(rest[0])}`);
  const limit = values.limit === undefined ? 100 : Number(values.limit);
  if (!Number.isInteger(limit) || limit < 1) throw new DeadLettersUsageError(`--limit must be a whole number of at least 1, got ${JSON.stringify(values.limit)}`);
  if (command === 'list' && values.id) throw new DeadLettersUsageError('--id goes with replay');
  return { config: values.config, endpoint: values.endpoint, command, limit, ...(values.id ? { ids: values.id } : {}) };
}

function pickEndpoint(config: NotificationsConfig, name: string | undefined): string {
  const names = config.endpoints.map((e) => e.name);
  if (name === undefined) {
    if (names.length === 1) return names[0];
    throw new DeadLettersUsageError(`give --endpoint: the configuration has ${names.length ? names.join(', ') : 'no endpoints'}`);
  }
  if (!names.includes(name)) throw new DeadLettersUsageError(`no endpoint named ${JSON.stringify(name)}; endpoints: ${names.join(', ') || 'none'}`);
  return name;
}

/** Runs the command, writing its output lines to `out`; resolves to the number of dead letters listed or replayed. */
export async function runDeadLetters(args: DeadLettersArgs, out: (line: string) => void): Promise<number> {
  const config = loadNotificationsConfig(args.config, { env: process.env });
  const endpoint = pickEndpoint(config, args.endpoint);
  if (config.queue.type === 'memory') {
    throw new DeadLettersUsageError(
      'notifications.queue.type is memory: dead letters live inside the registry process; ' +
        'use POST /debug/notifications/deadletters/replay on its debug address instead',
    );
  }
  const stores = createEndpointStores(config.queue, endpoint, `deadletters-cli-${process.pid}`);
  try {
    await stores.queue.open?.();
    if (args.command === 'list') {
      const letters = await stores.deadLetters.list({ limit: args.limit });
      for (const { event, reason, failedAt } of letters) {
        const t = event.target;
        out(JSON.stringify({ id: event.id, failedAt, reason, action: event.action, repository: t.repository, tag: t.tag, digest: t.digest }));
      }
      return letters.length;
    }
    const events = await replayDeadLetters(stores.deadLetters, (e) => stores.queue.append(e), args.ids);
    out(`replayed ${events.length} event(s) into the queue of endpoint ${endpoint}`);
    return events.length;
  } finally {
    await stores.queue.close();
    await stores.deadLetters.close();
  }
}

async function main(): Promise<void> {
  const log = (line: string) => process.stderr.write(line + '\n');
  try {
    await runDeadLetters(parseDeadLettersArgs(process.argv.slice(2)), (line) => process.stdout.write(line + '\n'));
    process.exit(0);
  } catch (err) {
    const usage = err instanceof DeadLettersUsageError || err instanceof ConfigError;
    log(`deadletters: ${(err as Error).message}${err instanceof DeadLettersUsageError ? `\n${DEADLETTERS_USAGE}` : ''}`);
    process.exit(usage ? 2 : 1);
  }
}

if (require.main === module) void main();
