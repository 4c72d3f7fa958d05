import { ConfigError, parseDuration } from '../lib';

/** A value as the demo's config errors show it. */
export function shown(value: unknown): string {
  return Array.isArray(value) ? `a list (${JSON.stringify(value)})` : `${value === null ? 'null' : typeof value} ${JSON.stringify(value)}`;
}

/** Levenshtein distance between two field names (case-insensitive). */
export function editDistance(a: string, b: string): number {
  const x = a.toLowerCase();
  const y = b.toLowerCase();
  let previous = Array.from({ length: y.length + 1 }, (_, j) => j);
  for (let i = 1; i <= x.length; i++) {
    const current = [i];
    for (let j = 1; j <= y.length; j++) {
      current[j] = Math.min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (x[i - 1] === y[j - 1] ? 0 : 1));
    }
    previous = current;
  }
  return previous[y.length];
}

/** The known name closest to `name` by edit distance (the first of equals, in `known`'s order). */
export function nearestName(name: string, known: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const k of known) {
    const d = editDistance(name, k);
    if (d < bestDistance) {
      best = k;
      bestDistance = d;
    }
  }
  return best;
}

/** The ConfigError for a field Distribution does not know: names it, the nearest known name and the others. */
export function unknownField(field: string, name: string, known: readonly string[]): ConfigError {
  const nearest = nearestName(name, known);
  const hint = nearest === undefined ? 'nothing is allowed here' : `did you mean ${JSON.stringify(nearest)}? allowed here: ${known.join(', ')}`;
  return new ConfigError(field, `unknown field; ${hint}`);
}

/** Joins a parent path and a key as config errors name fields (`http.tls.key`; the root has no name). */
export function fieldPath(parent: string, key: string | number): string {
  if (typeof key === 'number') return `${parent}[${key}]`;
  return parent === '' || parent === 'config' ? key : `${parent}.${key}`;
}

/**
 * The shape of a part of the configuration that is only checked for field names (what
 * the demo accepts without applying): a mapping of known names to their shapes, `ANY`
 * for a value of any type (a scalar, a list of scalars, or a mapping with free keys such
 * as a driver's parameters), or `[shape]` for a list of mappings of that shape.
 */
export type Shape = typeof ANY | { readonly [key: string]: Shape } | readonly [Shape];
export const ANY = 'any' as const;

/** Checks `value` against `shape`: unknown names throw (with the nearest known name), wrong containers too. */
export function checkShape(value: unknown, shape: Shape, path: string): void {
  if (shape === ANY || value === undefined || value === null) return;
  if (Array.isArray(shape)) {
    if (!Array.isArray(value)) throw new ConfigError(path, `expected a list, got ${shown(value)}`);
    value.forEach((item, i) => checkShape(item, shape[0], fieldPath(path, i)));
    return;
  }
  if (typeof value !== 'object' || Array.isArray(value)) throw new ConfigError(path, `expected a mapping, got ${shown(value)}`);
  const known = Object.keys(shape);
  for (const [key, v] of Object.entries(value)) {
    const sub = (shape as Record<string, Shape>)[key];
    if (sub === undefined) throw unknownField(fieldPath(path, key), key, known);
    checkShape(v, sub, fieldPath(path, key));
  }
}

/** The longest wait Node's timers keep (about 24.8 days). */
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * One mapping of a config.yml, read field by field: every read names the field's full
 * path in its ConfigError, and a key the section does not know is refused at once,
 * naming the nearest known name.
 */
export class Section {
  private constructor(
    readonly path: string,
    private readonly raw: Record<string, unknown>,
  ) {}

  /** The mapping at `path`, whose keys must be in `known`; undefined when absent, unless `required`. */
  static of(value: unknown, path: string, known: readonly string[], required = false): Section | undefined {
    if (value === undefined || value === null) {
      if (required) throw new ConfigError(path, `required; a mapping with ${known.join(', ')}`);
      return undefined;
    }
    if (typeof value !== 'object' || Array.isArray(value)) throw new ConfigError(path, `expected a mapping, got ${shown(value)}`);
    const unknown = Object.keys(value).find((k) => !known.includes(k));
    if (unknown !== undefined) throw unknownField(fieldPath(path, unknown), unknown, known);
    return new Section(path, value as Record<string, unknown>);
  }

  /** The full name of a field of this section. */
  at(key: string): string {
    return fieldPath(this.path, key);
  }

  /** The raw value of a field, for readers of its own (the notifications loader). */
  value(key: string): unknown {
    return this.raw[key] ?? undefined;
  }

  /** Whether the field is written in the file (even with an empty value, as `inmemory:`). */
  mentions(key: string): boolean {
    return Object.prototype.hasOwnProperty.call(this.raw, key);
  }

  /** Whether the field has a value (not absent, not null). */
  has(key: string): boolean {
    return this.raw[key] !== undefined && this.raw[key] !== null;
  }

  /** The fields written in the file, in its order. */
  keys(): string[] {
    return Object.keys(this.raw);
  }

  section(key: string, known: readonly string[], required = false): Section | undefined {
    return Section.of(this.raw[key], this.at(key), known, required);
  }

  /** Checks a field only for its field names, against `shape` (see `checkShape`). */
  shape(key: string, shape: Shape): void {
    checkShape(this.raw[key], shape, this.at(key));
  }

  string(key: string, required = false): string | undefined {
    const v = this.raw[key];
    if (v === undefined || v === null) {
      if (required) throw new ConfigError(this.at(key), 'required: a non-empty string');
      return undefined;
    }
    if (typeof v !== 'string' || v === '') throw new ConfigError(this.at(key), `expected a non-empty string, got ${shown(v)}`);
    return v;
  }

  /** One of `allowed`; `fallback` when absent. */
  choice<T extends string>(key: string, allowed: readonly T[], fallback: T): T {
    const v = this.string(key);
    if (v === undefined) return fallback;
    if (!(allowed as readonly string[]).includes(v)) {
      throw new ConfigError(this.at(key), `expected one of ${allowed.join(', ')}, got ${shown(v)}`);
    }
    return v as T;
  }

  boolean(key: string, fallback: boolean): boolean {
    const v = this.raw[key];
    if (v === undefined || v === null) return fallback;
    if (typeof v !== 'boolean') throw new ConfigError(this.at(key), `expected true or false, got ${shown(v)}`);
    return v;
  }

  /** A whole number of at least `min`; `fallback` when absent. */
  integer(key: string, fallback: number, min: number): number {
    const v = this.raw[key];
    if (v === undefined || v === null) return fallback;
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min) {
      throw new ConfigError(this.at(key), `expected a whole number of at least ${min}, got ${shown(v)}`);
    }
    return v;
  }

  /** A Go duration (`10s`, `168h`; a bare number is nanoseconds), in ms; `fallbackMs` when absent. */
  duration(key: string, fallbackMs: number, options: { timer?: boolean } = {}): number {
    const v = this.raw[key];
    if (v === undefined || v === null) return fallbackMs;
    const ms = parseDuration(v, this.at(key));
    if (options.timer && ms > MAX_TIMER_MS) {
      throw new ConfigError(this.at(key), `${JSON.stringify(v)} is longer than the longest wait a timer keeps (about 24 days)`);
    }
    return ms;
  }

  /** A list of non-empty strings; `[]` when absent. */
  strings(key: string): string[] {
    const v = this.raw[key];
    if (v === undefined || v === null) return [];
    if (!Array.isArray(v)) throw new ConfigError(this.at(key), `expected a list of strings, got ${shown(v)}`);
    return v.map((item, i) => {
      if (typeof item !== 'string' || item === '') throw new ConfigError(fieldPath(this.at(key), i), `expected a non-empty string, got ${shown(item)}`);
      return item;
    });
  }

  /** A mapping of free names to scalars (`log.fields`); `{}` when absent. */
  scalars(key: string): Record<string, string | number | boolean> {
    const v = this.raw[key];
    if (v === undefined || v === null) return {};
    if (typeof v !== 'object' || Array.isArray(v)) throw new ConfigError(this.at(key), `expected a mapping of names to values, got ${shown(v)}`);
    const out: Record<string, string | number | boolean> = {};
    for (const [name, value] of Object.entries(v)) {
      if (typeof value !== 'string' && typeof value !== 'number' && typeof value !== 'boolean') {
        throw new ConfigError(fieldPath(this.at(key), name), `expected a string, number or boolean, got ${shown(value)}`);
      }
      out[name] = value;
    }
    return out;
  }

  /** A mapping of free names to lists of strings (`http.headers`, as Go's http.Header); `{}` when absent. */
  stringLists(key: string): Record<string, string[]> {
    const v = this.raw[key];
    if (v === undefined || v === null) return {};
    if (typeof v !== 'object' || Array.isArray(v)) throw new ConfigError(this.at(key), `expected a mapping of names to lists of strings, got ${shown(v)}`);
    const out: Record<string, string[]> = {};
    for (const [name, values] of Object.entries(v)) {
      const field = fieldPath(this.at(key), name);
      if (!Array.isArray(values)) throw new ConfigError(field, `expected a list of strings such as [nosniff], got ${shown(values)}`);
      out[name] = values.map((item, i) => {
        if (typeof item !== 'string') throw new ConfigError(fieldPath(field, i), `expected a string, got ${shown(item)}`);
        return item;
      });
    }
    return out;
  }

  /** A list of mappings, each read by `read`; `[]` when absent. */
  list<T>(key: string, known: readonly string[], read: (item: Section) => T): T[] {
    const v = this.raw[key];
    if (v === undefined || v === null) return [];
    if (!Array.isArray(v)) throw new ConfigError(this.at(key), `expected a list, got ${shown(v)}`);
    return v.map((item, i) => read(Section.of(item, fieldPath(this.at(key), i), known, true)!));
  }
}
