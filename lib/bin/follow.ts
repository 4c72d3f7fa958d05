#!/usr/bin/env node
// Follows a registry's event feed on the command line:
//   npx registry-notifications-follow --url http://registry:5001/events [--consumer NAME] [--topic /manifest/push]... [--cursor C] [--token T]
// Each event is printed to stdout as one compact JSON line; everything else goes to
// stderr. Exit codes: 0 after SIGTERM/SIGINT, 1 when the feed refuses or has lost the
// cursor, 2 for bad arguments.
import { parseArgs } from 'node:util';
import { encodeEvent } from '../codec/envelope';
import { followEvents, type FollowOptions } from '../receive/follow';
import { UsageError } from './receiver';

export const FOLLOW_USAGE = 'usage: follow --url URL [--consumer NAME] [--topic TOPIC]... [--cursor C] [--limit N] [--token T]';

/** Parses the follower's arguments (without node and the script path) into followEvents options. */
export function parseFollowArgs(argv: readonly string[]): FollowOptions {
  let values: { url?: string; consumer?: string; topic?: string[]; cursor?: string; limit?: string; token?: string };
  try {
    ({ values } = parseArgs({
      args: [...argv],
      options: {
        url: { type: 'string' },
        consumer: { type: 'string' },
        topic: { type: 'string', multiple: true },
        cursor: { type: 'string' },
        limit: { type: 'string' },
        token: { type: 'string' },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  if (values.url === undefined) throw new UsageError('missing --url: the feed, e.g. http://127.0.0.1:5001/events');
  let url: URL;
  try {
    url = new URL(values.url);
  } catch {
    throw new UsageError(`--url is not a URL: ${JSON.stringify(values.url)}`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new UsageError(`--url must be http: or https:, got ${JSON.stringify(url.protocol)}`);
  if (values.limit !== undefined && !(/^\d+$/.test(values.limit) && Number(values.limit) >= 1 && Number(values.limit) <= 1000)) {
    throw new UsageError(`--limit must be a whole number from 1 to 1000, got ${JSON.stringify(values.limit)}`);
  }
  for (const topic of values.topic ?? []) {
    if (!topic.startsWith('/')) throw new UsageError(`--topic must be a path such as /manifest/push, got ${JSON.stringify(topic)}`);
  }
  if (values.consumer === '') throw new UsageError('--consumer must not be empty');
  if (values.token === '') throw new UsageError('--token must not be empty');
  return {
    url: url.toString(),
    ...(values.consumer !== undefined ? { consumer: values.consumer } : {}),
    ...(values.topic ? { topics: values.topic } : {}),
    ...(values.cursor !== undefined ? { cursor: values.cursor } : {}),
    ...(values.limit !== undefined ? { limit: Number(values.limit) } : {}),
    ...(values.token !== undefined ? { headers: { authorization: `Bearer ${values.token}` } } : {}),
  };
}

async function main(): Promise<void> {
  const log = (line: string) => process.stderr.write(line + '\n');
  let options: FollowOptions;
  try {
    options = parseFollowArgs(process.argv.slice(2));
  } catch (err) {
    log(`follow: ${(err as Error).message}\n${FOLLOW_USAGE}`);
    process.exit(2);
  }
  const stop = new AbortController();
  process.once('SIGTERM', () => stop.abort());
  process.once('SIGINT', () => stop.abort());
  try {
    const events = followEvents({
      ...options,
      signal: stop.signal,
      onRetry: (err, waitMs) => log(`follow: ${err.message}; trying again in ${waitMs}ms`),
    });
    for await (const event of events) process.stdout.write(encodeEvent(event, { indent: false }) + '\n');
  } catch (err) {
    log(`follow: ${(err as Error).message}`);
    process.exit(1);
  }
  process.exit(0);
}

if (require.main === module) void main();
