import { parse as parseYaml } from 'yaml';
import { ConfigError, describeValue } from './values';

/** Where an override landed: the keys (as the document spells them) and list indexes from the root. */
export type OverridePath = (string | number)[];

/** One variable that was applied, and the path it set. */
export interface AppliedOverride {
  variable: string;
  path: OverridePath;
  /** The shallowest list item, key or mapping it added (absent when it only replaced a value). */
  created?: OverridePath;
}

/**
 * Applies `<prefix>_<PATH>` environment variables to a parsed YAML document, as the
 * CNCF Distribution registry does with `REGISTRY_HTTP_ADDR` and the like, and returns
 * the new document; the input is left as it was.
 *
 * - `_` separates the path's segments (Distribution's field names contain none), each
 *   matched case-insensitively against the keys already there, whose spelling is kept;
 *   a missing key is created in lower case, with the mappings along its path.
 * - The value is read as YAML, as the file is (`true` a boolean, `5` a number, `1s` a
 *   string, `[a, b]` a list), and goes through the same checks as the file afterwards.
 * - Beyond Distribution: a segment of digits is a list index
 *   (`REGISTRY_NOTIFICATIONS_ENDPOINTS_0_URL`); an index one past the end appends an
 *   item, a larger one is an error. A name under a `headers` mapping is a header:
 *   its value is taken as it is (not as YAML) and set as the list `[value]`, under the
 *   file's spelling of the name or else its canonical form (`Authorization`, `X-Api-Key`).
 * - A path applies before the longer ones below it (so `REGISTRY_STORAGE` before
 *   `REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY`, as in Distribution), list indexes in
 *   numeric order (`…_ENDPOINTS_2_…` before `…_ENDPOINTS_10_…`).
 * - A variable that is set but empty sets the field to null, which reads as absent
 *   (a header to the one empty value).
 *
 * A variable that cannot apply (a field below a scalar, a word where a list needs an
 * index, an index past the end, an empty segment, a value that is not YAML) throws a
 * `ConfigError` naming the variable.
 */
export function applyEnvOverrides(doc: unknown, env: Record<string, string | undefined>, prefix = 'REGISTRY'): unknown {
  return overrideDocument(doc, env, prefix).doc;
}

/**
 * Applies the `<prefix>_<PATH>` variables of `env` to `doc` (see `applyEnvOverrides`) and
 * hands the result to `parse`. A ConfigError that `parse` throws about a field a
 * variable set, or inside an item one added, names that variable too, since the file has
 * no such line: `log.formater: unknown field; … (set by REGISTRY_LOG_FORMATER)`. `root`
 * is the path of `doc` in the fields `parse` names, e.g. `notifications` for that section.
 */
export function parseWithEnvOverrides<T>(
  doc: unknown,
  env: Record<string, string | undefined>,
  parse: (doc: unknown) => T,
  prefix = 'REGISTRY',
  root = '',
): T {
  const { doc: overridden, applied } = overrideDocument(doc, env, prefix, root);
  try {
    return parse(overridden);
  } catch (err) {
    throw blameVariable(err, applied, root);
  }
}

/**
 * A ConfigError about a field a variable set, or inside an item it added, names the
 * variable too, as the file has no such line. The most specific variable wins.
 */
function blameVariable(err: unknown, applied: AppliedOverride[], root: string): unknown {
  if (!(err instanceof ConfigError)) return err;
  const within = (at: string) => err.field === at || err.field.startsWith(`${at}.`) || err.field.startsWith(`${at}[`);
  let culprit: { how: string; at: string } | undefined;
  const consider = (how: string, at: string) => {
    if (within(at) && (!culprit || at.length > culprit.at.length)) culprit = { how, at };
  };
  for (const { variable, path, created } of applied) {
    consider(`set by ${variable}`, formatPath(root, path));
    if (created) consider(`added by ${variable}`, formatPath(root, created));
  }
  if (!culprit) return err;
  const message = err.message.startsWith(`${err.field}: `) ? err.message.slice(err.field.length + 2) : err.message;
  return new ConfigError(err.field, `${message} (${culprit.how})`);
}

/**
 * `applyEnvOverrides`, also telling which variables applied and where. `root` names
 * the document in error messages (e.g. `notifications` when it is that section).
 */
export function overrideDocument(
  doc: unknown,
  env: Record<string, string | undefined>,
  prefix: string,
  root = '',
): { doc: unknown; applied: AppliedOverride[] } {
  const lead = `${prefix}_`;
  const variables = Object.keys(env)
    .filter((name) => name.startsWith(lead) && env[name] !== undefined)
    .map((name) => ({ name, segments: name.slice(lead.length).split('_') }))
    .sort((x, y) => compareSegments(x.segments, y.segments) || (x.name < y.name ? -1 : x.name > y.name ? 1 : 0));
  let result = doc;
  const applied: AppliedOverride[] = [];
  for (const { name, segments } of variables) {
    if (segments.some((s) => s === '')) {
      throw new ConfigError(name, `empty path segment; write the path as ${prefix}_<FIELD>_<FIELD>..., one _ between fields`);
    }
    const record: AppliedOverride = { variable: name, path: [] };
    result = assign(result, segments, 0, env[name]!, { record, root, underHeaders: false });
    applied.push(record);
  }
  return { doc: result, applied };
}

/** A path as error messages show it: `notifications.endpoints[0].url`. */
export function formatPath(root: string, path: OverridePath): string {
  let out = root;
  for (const p of path) out += typeof p === 'number' ? `[${p}]` : out === '' ? p : `.${p}`;
  return out;
}

interface Walk {
  /** The variable; its path is filled in as the walk goes down. */
  record: AppliedOverride;
  root: string;
  /** Whether the mapping being walked is a `headers` mapping. */
  underHeaders: boolean;
}

const INDEX = /^\d+$/;

/** Returns a copy of `node` with the value set at `segments[i..]`; copies only the containers on the path. */
function assign(node: unknown, segments: string[], i: number, raw: string, walk: Walk): unknown {
  const segment = segments[i];
  const last = i === segments.length - 1;
  const { variable, path } = walk.record;
  const here = () => formatPath(walk.root, path) || 'the document';
  const added = () => (walk.record.created ??= [...path]);
  if (node === undefined || node === null) {
    added();
    node = INDEX.test(segment) ? [] : {};
  }

  if (Array.isArray(node)) {
    if (!INDEX.test(segment)) {
      throw new ConfigError(variable, `${here()} is a list; expected an index (0, 1, …) where ${JSON.stringify(segment)} is`);
    }
    const index = Number(segment);
    if (index > node.length) {
      throw new ConfigError(
        variable,
        `index ${index} is past the end of ${here()}, which has ${node.length} item${node.length === 1 ? '' : 's'}; the next new one is ${node.length}`,
      );
    }
    const copy = node.slice();
    path.push(index);
    if (index === node.length) added();
    copy[index] = last ? readValue(raw, walk) : assign(node[index], segments, i + 1, raw, { ...walk, underHeaders: false });
    return copy;
  }

  if (typeof node === 'object') {
    const mapping = node as Record<string, unknown>;
    const wanted = segment.toLowerCase();
    const existing = Object.keys(mapping).find((k) => k.toLowerCase() === wanted);
    const key = existing ?? (walk.underHeaders ? canonicalHeaderName(segment) : wanted);
    const copy: Record<string, unknown> = { ...mapping };
    path.push(key);
    if (existing === undefined) added();
    if (last) {
      copy[key] = walk.underHeaders ? [raw] : readValue(raw, walk);
    } else {
      copy[key] = assign(mapping[key], segments, i + 1, raw, { ...walk, underHeaders: key.toLowerCase() === 'headers' });
    }
    return copy;
  }

  const rest = segments.slice(i).join('_');
  throw new ConfigError(variable, `cannot set ${rest} below ${here()}, which is ${describeValue(node)}, not a mapping`);
}

/** The variable's value read as YAML, as the file's values are. */
function readValue(raw: string, walk: Walk): unknown {
  try {
    return parseYaml(raw);
  } catch (err) {
    throw new ConfigError(walk.record.variable, `cannot read ${JSON.stringify(raw)} as a YAML value: ${(err as Error).message.split('\n')[0]}`);
  }
}

/** `AUTHORIZATION` -> `Authorization`, `X-API-KEY` -> `X-Api-Key`, as Go's net/http writes header names. */
function canonicalHeaderName(name: string): string {
  return name.toLowerCase().replace(/(^|-)([a-z])/g, (_m, dash: string, letter: string) => dash + letter.toUpperCase());
}

/**
 * Segment by segment, so a path comes before the longer paths below it; numeric
 * segments compare as numbers (`2` before `10`), others case-insensitively.
 */
function compareSegments(a: string[], b: string[]): number {
  for (let i = 0; i < Math.min(a.length, b.length); i++) {
    const x = a[i];
    const y = b[i];
    if (INDEX.test(x) && INDEX.test(y)) {
      const d = Number(x) - Number(y);
      if (d !== 0) return d;
      continue;
    }
    const ux = x.toUpperCase();
    const uy = y.toUpperCase();
    if (ux !== uy) return ux < uy ? -1 : 1;
  }
  return a.length - b.length;
}
