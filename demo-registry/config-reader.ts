import { ConfigError } from '../lib';

/** A value as the demo's config errors show it. */
export function shown(value: unknown): string {
  return Array.isArray(value) ? `a list (${JSON.stringify(value)})` : `${value === null ? 'null' : typeof value} ${JSON.stringify(value)}`;
}

/**
 * One mapping of a config.yml, read field by field: every read names the field's full
 * path in its ConfigError, and a key the section does not know is refused at once.
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
    if (unknown !== undefined) throw new ConfigError(`${path}.${unknown}`, `unknown field; allowed here: ${known.join(', ')}`);
    return new Section(path, value as Record<string, unknown>);
  }

  private at(key: string): string {
    return this.path === 'config' ? key : `${this.path}.${key}`;
  }

  /** The raw value of a field, for readers of its own (the notifications loader). */
  value(key: string): unknown {
    return this.raw[key] ?? undefined;
  }

  section(key: string, known: readonly string[], required = false): Section | undefined {
    return Section.of(this.raw[key], this.at(key), known, required);
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

  boolean(key: string, fallback: boolean): boolean {
    const v = this.raw[key];
    if (v === undefined || v === null) return fallback;
    if (typeof v !== 'boolean') throw new ConfigError(this.at(key), `expected true or false, got ${shown(v)}`);
    return v;
  }
}
