import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';

// The arrows of the architecture, checked on every import in lib/ and demo-registry/.
// A rule names a folder (relative to the repository), what it may not import, and why.
const root = path.resolve(__dirname, '..', '..');

interface Import {
  from: string;
  /** The imported module: a repository-relative path without extension, or a package name. */
  target: string;
  line: number;
}

function sourceFiles(dir: string): string[] {
  return readdirSync(path.join(root, dir), { recursive: true, withFileTypes: false })
    .map(String)
    .filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts'))
    .map((f) => path.posix.join(dir, f.split(path.sep).join('/')));
}

/** Every `import ... from`, `export ... from`, `import()` and `require()` of a file. */
export function importsOf(file: string, text = readFileSync(path.join(root, file), 'utf8')): Import[] {
  const out: Import[] = [];
  const re = /(?:\bfrom\s*|\bimport\s*\(\s*|\brequire\s*\(\s*|^\s*import\s+)['"]([^'"]+)['"]/gm;
  for (const m of text.matchAll(re)) {
    const spec = m[1];
    const target = spec.startsWith('.') ? path.posix.normalize(path.posix.join(path.posix.dirname(file), spec)) : spec;
    out.push({ from: file, target, line: text.slice(0, m.index).split('\n').length });
  }
  return out;
}

interface Rule {
  folder: string;
  forbidden: (target: string) => boolean;
  why: string;
}

const under = (...dirs: string[]) => (t: string) => dirs.some((d) => t === d || t.startsWith(d + '/'));
const RULES: Rule[] = [
  { folder: 'lib/model', forbidden: (t) => t.startsWith('lib/') && !under('lib/model')(t), why: 'the event model imports nothing else of ours' },
  { folder: 'lib/codec', forbidden: (t) => t.startsWith('lib/') && !under('lib/model', 'lib/codec', 'lib/config/defaults')(t), why: 'codecs build on the model only' },
  { folder: 'lib/deliver', forbidden: under('lib/emit', 'lib/receive', 'lib/codec/cloudevents'), why: 'delivery knows nothing of emitting, receiving or CloudEvents internals' },
  { folder: 'lib/deliver', forbidden: (t) => t === 'express' || t === 'prom-client', why: 'sinks report through hooks; Express and metrics stay outside' },
  { folder: 'lib/receive', forbidden: under('lib/deliver', 'lib/emit'), why: 'the receiver shares the model and codecs with the sender, not its pipeline' },
  { folder: 'lib/stores', forbidden: under('lib/deliver', 'lib/emit', 'lib/receive', 'lib/inspect'), why: 'stores know nothing of HTTP or the pipeline' },
  { folder: 'lib/emit', forbidden: under('lib/receive', 'lib/inspect'), why: 'emitting does not depend on receiving or inspecting' },
  { folder: 'lib', forbidden: under('demo-registry', 'bench', 'test'), why: 'the library never imports the demo, benchmarks or tests' },
  { folder: 'demo-registry', forbidden: (t) => t.startsWith('lib/'), why: 'the demo uses the library through its public entry point, as a user would' },
];

/** The imports of `files` that break a rule, as readable lines. */
export function violations(files: string[], read?: (file: string) => string): string[] {
  const out: string[] = [];
  for (const file of files) {
    for (const imp of importsOf(file, read?.(file))) {
      for (const rule of RULES) {
        if ((file.startsWith(rule.folder + '/')) && rule.forbidden(imp.target)) {
          out.push(`${file}:${imp.line} imports ${imp.target}: ${rule.why}`);
        }
      }
    }
  }
  return out;
}

describe('dependency rules', () => {
  const files = [...sourceFiles('lib'), ...sourceFiles('demo-registry')];

  it('finds the imports it checks', () => {
    expect(files.length).toBeGreaterThan(40);
    expect(importsOf('lib/deliver/endpoint.ts').map((i) => i.target)).toContain('lib/deliver/queue');
  });

  it('holds for every file', () => {
    expect(violations(files)).toEqual([]);
  });

  it('catches an import that breaks a rule', () => {
    const read = (file: string) => readFileSync(path.join(root, file), 'utf8') + "\nimport { createReceiver } from '../receive/receiver';\n";
    expect(violations(['lib/deliver/queue.ts'], read)).toEqual([
      expect.stringMatching(/^lib\/deliver\/queue\.ts:\d+ imports lib\/receive\/receiver: delivery knows nothing/),
    ]);
    const cloudevents = () => "import { toCloudEvent } from '../codec/cloudevents';\n";
    expect(violations(['lib/deliver/filter.ts'], cloudevents)).toHaveLength(1);
    const demo = () => "import { Endpoint } from '../lib/deliver/endpoint';\n";
    expect(violations(['demo-registry/app.ts'], demo)).toHaveLength(1);
  });
});

describe("the README's layout table", () => {
  const readme = readFileSync(path.join(root, 'README.md'), 'utf8');
  const layout = readme.slice(readme.indexOf('## Layout'), readme.indexOf('## The public API'));

  it('lists every file of lib/ in the row of its folder', () => {
    const unlisted = sourceFiles('lib').filter((file) => {
      const folder = path.posix.dirname(file) + '/';
      const row = layout.split('\n').find((line) => line.startsWith(`| \`${folder}\``));
      return !row?.includes(`\`${path.posix.basename(file)}\``);
    });
    expect(unlisted).toEqual([]);
  });
});
