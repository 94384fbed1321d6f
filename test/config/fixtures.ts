/** Load helpers for config tests: no file system, a fixed resolv.conf. */
import type { LoadDeps } from '../../src/config/load.ts';

export function deps(files: Record<string, string> = {}, resolv = 'nameserver 192.0.2.53\n'): LoadDeps {
  return {
    readFile: (p) => {
      const t = files[p];
      if (t === undefined) throw new Error(`ENOENT: no such file or directory, open '${p}'`);
      return t;
    },
    resolvTexts: () => [resolv],
  };
}

/** argv-style flag list → the map parseArgs produces. */
export function flags(...pairs: Array<[string, string]>): Map<string, string[]> {
  const m = new Map<string, string[]>();
  for (const [k, v] of pairs) m.set(k, [...(m.get(k) ?? []), v]);
  return m;
}
