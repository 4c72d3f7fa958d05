import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';

/** The captured Distribution 2.8.2 deliveries in ../shared/fixtures. */
export const FIXTURE_DIR = path.resolve(__dirname, '../../../shared/fixtures/distribution-2.8.2');

export interface Fixture {
  name: string;
  /** The exact bytes Distribution POSTed. */
  body: string;
  headers: Record<string, string>;
  parsed: { events: unknown[] };
}

export function loadFixtures(): Fixture[] {
  return readdirSync(FIXTURE_DIR)
    .filter((f) => f.endsWith('.body'))
    .sort()
    .map((f) => {
      const name = f.replace(/\.body$/, '');
      const meta = JSON.parse(readFileSync(path.join(FIXTURE_DIR, `${name}.json`), 'utf8'));
      return { name, body: readFileSync(path.join(FIXTURE_DIR, f), 'utf8'), headers: meta.headers, parsed: meta.body };
    });
}
