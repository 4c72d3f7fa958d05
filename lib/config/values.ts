/** A configuration value that is missing, of the wrong type or out of range. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  constructor(
    /** Dotted path of the field, e.g. `notifications.endpoints[0].timeout`. */
    readonly field: string,
    message: string,
  ) {
    super(`${field}: ${message}`);
  }
}

/**
 * The longest wait Node's timers keep: a longer one fires at once, so an unchecked
 * `backoff: 600h` would retry every millisecond.
 */
export const MAX_DURATION_MS = 2 ** 31 - 1; // about 24.8 days

const UNITS: Record<string, number> = { ns: 1e-6, us: 1e-3, µs: 1e-3, μs: 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/**
 * Parses a Go duration (`500ms`, `1s`, `2m`, `1h30m`, `1.5s`) into ms. A bare number is
 * nanoseconds, as Distribution's YAML reads an integer duration.
 */
export function parseDuration(value: unknown, field: string): number {
  if (typeof value === 'number' && Number.isFinite(value) && value >= 0) return value / 1e6;
  if (typeof value === 'string') {
    const text = value.trim();
    if (text === '0') return 0;
    const re = /(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)/gy;
    let total = 0;
    let matched = 0;
    let m: RegExpExecArray | null;
    while ((m = re.exec(text)) !== null) {
      total += Number(m[1]) * UNITS[m[2]];
      matched = re.lastIndex;
    }
    if (matched > 0 && matched === text.length) return total;
  }
  throw new ConfigError(
    field,
    `invalid duration ${JSON.stringify(value)}; use a number with a unit such as 500ms, 1s, 2m or 1h30m`,
  );
}

/** A value as error messages show it: its type and JSON. */
export function describeValue(value: unknown): string {
  if (Array.isArray(value)) return `a list (${JSON.stringify(value)})`;
  if (typeof value === 'number' && !Number.isFinite(value)) return `number ${value}`;
  return `${value === null ? 'null' : typeof value} ${JSON.stringify(value)}`;
}

const absent = (value: unknown): value is undefined | null => value === undefined || value === null;

/** A mapping whose keys must all be in `allowed`; `{}` when absent, unless `required`. */
export function expectMapping(value: unknown, field: string, allowed: readonly string[], required = false): Record<string, unknown> {
  if (absent(value)) {
    if (required) throw new ConfigError(field, `required; a mapping with ${allowed.join(', ')}`);
    return {};
  }
  if (typeof value !== 'object' || Array.isArray(value)) {
    throw new ConfigError(field, `expected a mapping, got ${describeValue(value)}`);
  }
  for (const key of Object.keys(value)) {
    if (!allowed.includes(key)) {
      const near = nearestName(key, allowed);
      const hint = near === undefined ? '' : `did you mean ${near}? `;
      throw new ConfigError(`${field}.${key}`, `unknown field; ${hint}allowed here: ${allowed.join(', ')}`);
    }
  }
  return value as Record<string, unknown>;
}

/**
 * The name in `known` that `name` most likely misspells, or undefined when none is
 * close. Case is ignored; the distance counts insertions, deletions, substitutions and
 * swaps of two neighbouring letters (`tiemout` is one step from `timeout`), and a name
 * is close when it is at most a third of the longer name's length away (at least 1,
 * at most 3 steps). Ties go to the first in `known`.
 */
export function nearestName(name: string, known: readonly string[]): string | undefined {
  const a = name.toLowerCase();
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const candidate of known) {
    const b = candidate.toLowerCase();
    const limit = Math.min(3, Math.max(1, Math.floor(Math.max(a.length, b.length) / 3)));
    const d = editDistance(a, b);
    if (d <= limit && d < bestDistance) {
      best = candidate;
      bestDistance = d;
    }
  }
  return best;
}

/** Optimal string alignment distance: Levenshtein plus swaps of adjacent characters. */
function editDistance(a: string, b: string): number {
  const rows: number[][] = [];
  for (let i = 0; i <= a.length; i++) {
    rows.push([i]);
    for (let j = 1; j <= b.length; j++) {
      if (i === 0) {
        rows[0].push(j);
        continue;
      }
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let d = Math.min(rows[i - 1][j] + 1, rows[i][j - 1] + 1, rows[i - 1][j - 1] + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d = Math.min(d, rows[i - 2][j - 2] + 1);
      rows[i].push(d);
    }
  }
  return rows[a.length][b.length];
}

/** A boolean, or `fallback` when absent. */
export function expectBoolean(value: unknown, field: string, fallback: boolean): boolean {
  if (absent(value)) return fallback;
  if (typeof value !== 'boolean') throw new ConfigError(field, `expected true or false, got ${describeValue(value)}`);
  return value;
}

/** A non-empty string; undefined when absent, unless `required`. */
export function expectString(value: unknown, field: string, required = false): string | undefined {
  if (absent(value)) {
    if (required) throw new ConfigError(field, 'required: a non-empty string');
    return undefined;
  }
  if (typeof value !== 'string' || value === '') throw new ConfigError(field, `expected a non-empty string, got ${describeValue(value)}`);
  return value;
}

/** A whole number from `min` to `max`, or `fallback` when absent. */
export function expectInteger(value: unknown, field: string, fallback: number, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (absent(value)) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    const range = max === Number.MAX_SAFE_INTEGER ? `of at least ${min}` : `from ${min} to ${max}`;
    throw new ConfigError(field, `expected a whole number ${range}, got ${describeValue(value)}`);
  }
  return value;
}

/** A list of strings; `[]` when absent. */
export function expectStrings(value: unknown, field: string): string[] {
  if (absent(value)) return [];
  if (!Array.isArray(value)) throw new ConfigError(field, `expected a list of strings, got ${describeValue(value)}`);
  return value.map((v, i) => {
    if (typeof v !== 'string') throw new ConfigError(`${field}[${i}]`, `expected a string, got ${describeValue(v)}`);
    return v;
  });
}

/** A duration in ms, given as ms (code) or in Go's notation (YAML); `fallback` when absent. */
export function expectDuration(value: unknown, field: string, fallback: number): number {
  if (absent(value)) return fallback;
  const ms = typeof value === 'number' ? value : parseDuration(value, field);
  if (!Number.isFinite(ms) || ms < 0) throw new ConfigError(field, `expected a duration of at least 0, got ${describeValue(value)}`);
  if (ms > MAX_DURATION_MS) {
    throw new ConfigError(field, `${ms}ms is longer than the longest wait a timer keeps (${MAX_DURATION_MS}ms, about 24 days)`);
  }
  return ms;
}

const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
/** Characters an HTTP header value cannot carry (Node refuses them on every request). */
const INVALID_HEADER_CHAR = /[^\t\x20-\x7e\x80-\xff]/;
const CHAR_NAMES: Record<string, string> = { '\r': 'CR', '\n': 'LF', '\0': 'NUL' };

/** Whether a header name is an HTTP token. */
export function isHeaderName(name: string): boolean {
  return HEADER_NAME.test(name);
}

/** The first character of a header value that HTTP cannot carry, named (`CR`, `LF`, `NUL`, `U+0001`); undefined when there is none. */
export function unsafeHeaderChar(value: string): string | undefined {
  const bad = INVALID_HEADER_CHAR.exec(value)?.[0];
  return bad === undefined ? undefined : (CHAR_NAMES[bad] ?? `U+${bad.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')}`);
}
