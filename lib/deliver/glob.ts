/**
 * Compiles a glob for repository names and tags into a RegExp that matches the whole
 * text: `*` is any run of characters but `/`, `**` any run including `/`, `?` one
 * character but `/`; everything else is literal.
 */
export function globToRegExp(glob: string): RegExp {
  let re = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i];
    if (c === '*') {
      if (glob[i + 1] === '*') {
        i++;
        // `a/**/b` also matches `a/b`.
        if (glob[i + 1] === '/') {
          i++;
          re += '(?:.*/)?';
        } else {
          re += '.*';
        }
      } else {
        re += '[^/]*';
      }
    } else if (c === '?') {
      re += '[^/]';
    } else {
      re += c.replace(/[.+^${}()|[\]\\]/g, '\\$&');
    }
  }
  return new RegExp(`^${re}$`);
}

/** A matcher for a list of globs: true when any of them matches. */
export function globMatcher(globs: readonly string[]): (text: string) => boolean {
  const res = globs.map(globToRegExp);
  return (text) => res.some((r) => r.test(text));
}
