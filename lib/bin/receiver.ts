#!/usr/bin/env node
// A webhook receiver on the command line, for trying a registry's notifications:
//   npx registry-notifications-receiver --port P [--token T] [--secret S]...
// Each distinct event is printed to stdout as one compact JSON line; everything else
// goes to stderr. Exit codes: 0 after SIGTERM/SIGINT, 1 when it cannot listen, 2 for bad arguments.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { parseArgs } from 'node:util';
import express from 'express';
import { encodeEvent } from '../codec/envelope';
import { createReceiver } from '../receive/receiver';

export interface ReceiverCliArgs {
  port: number;
  token?: string;
  secrets: string[];
}

/** Thrown for command-line arguments the receiver cannot use; the CLI exits with 2. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
  constructor(message: string) {
    super(message);
  }
}

export const USAGE = 'usage: receiver --port P [--token T] [--secret S]...';

/** Parses the receiver's arguments (without node and the script path). */
export function parseReceiverArgs(argv: readonly string[]): ReceiverCliArgs {
  let values: { port?: string; token?: string; secret?: string[] };
  try {
    ({ values } = parseArgs({
      args: [...argv],
      options: {
        port: { type: 'string' },
        token: { type: 'string' },
        secret: { type: 'string', multiple: true },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  if (values.port === undefined) throw new UsageError('missing --port: give a TCP port on 127.0.0.1, or 0 for any free one');
  if (!/^\d{1,5}$/.test(values.port) || Number(values.port) > 65535) {
    throw new UsageError(`--port must be a whole number from 0 to 65535, got ${JSON.stringify(values.port)}`);
  }
  if (values.token === '') throw new UsageError('--token must not be empty');
  const secrets = values.secret ?? [];
  if (secrets.some((s) => s === '')) throw new UsageError('--secret must not be empty');
  return { port: Number(values.port), ...(values.token !== undefined ? { token: values.token } : {}), secrets };
}

/** Starts the receiver and resolves with its server once it listens on 127.0.0.1. */
export async function startReceiverCli(args: ReceiverCliArgs, out: NodeJS.WritableStream, log: (line: string) => void): Promise<http.Server> {
  const app = express();
  app.use((req, res, next) => {
    res.on('finish', () => log(`${req.method} ${req.originalUrl} ${res.statusCode}`));
    next();
  });
  app.use(
    createReceiver({
      token: args.token,
      secrets: args.secrets.length > 0 ? args.secrets : undefined,
      onEvent: (event) => {
        out.write(encodeEvent(event, { indent: false }) + '\n');
      },
      onError: (err) => log(`error: ${(err as Error)?.message ?? String(err)}`),
    }),
  );
  const server = http.createServer(app);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(args.port, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  return server;
}

async function main(): Promise<void> {
  const log = (line: string) => process.stderr.write(line + '\n');
  let args: ReceiverCliArgs;
  try {
    args = parseReceiverArgs(process.argv.slice(2));
  } catch (err) {
    log(`receiver: ${(err as Error).message}\n${USAGE}`);
    process.exit(2);
  }
  let server: http.Server;
  try {
    server = await startReceiverCli(args, process.stdout, log);
  } catch (err) {
    log(`receiver: cannot listen on 127.0.0.1:${args.port}: ${(err as Error).message}`);
    process.exit(1);
  }
  log(`listening on 127.0.0.1:${(server.address() as AddressInfo).port}`);
  const stop = (signal: string) => {
    log(`received ${signal}, stopping`);
    server.close(() => process.exit(0));
    server.closeAllConnections();
  };
  process.once('SIGTERM', () => stop('SIGTERM'));
  process.once('SIGINT', () => stop('SIGINT'));
}

if (require.main === module) void main();
