/** `--only` / `--exclude` site globs: `*` any run of characters, `?` one character, `[abc]` a class. */

export function globToRegExp(glob: string): RegExp {
  let re = '^';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i];
    if (c === '*') re += '.*';
    else if (c === '?') re += '.';
    else if (c === '[') {
      const end = glob.indexOf(']', i + 1);
      if (end < 0) re += '\\[';
      else {
        let body = glob.slice(i + 1, end).replace(/\\/g, '\\\\');
        if (body.startsWith('!')) body = `^${body.slice(1)}`;
        re += `[${body}]`;
        i = end;
      }
    } else re += c.replace(/[.+^${}()|\\\]]/g, '\\$&');
  }
  return new RegExp(`${re}$`, 'i');
}

/** Split repeated and comma-separated glob options into single globs. */
export function splitGlobs(values: string[] | string | undefined): string[] {
  const list = values === undefined ? [] : Array.isArray(values) ? values : [values];
  return list.flatMap((v) => v.split(',')).map((v) => v.trim()).filter(Boolean);
}

/** Keep a site when it matches one `only` glob (or `only` is empty) and no `exclude` glob. */
export function selectSite(site: string, only: string[], exclude: string[]): boolean {
  const matches = (globs: string[]) => globs.some((g) => globToRegExp(g).test(site));
  if (only.length > 0 && !matches(only)) return false;
  return !matches(exclude);
}
