/** Load helpers for config tests: no file system, a fixed resolv.conf. */
import { expect } from 'bun:test';
import { loadConfigText, type LoadDeps } from '../../src/config/load.ts';
import { ConfigError } from '../../src/util/errors.ts';

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

/** Loads YAML `text` as dnsseal.yaml with the flags `f` (no files, the fixed resolv.conf). */
export const loadWith = (text: string, ...f: Array<[string, string]>) => loadConfigText(text, 'dnsseal.yaml', flags(...f), deps());

/** The ConfigError `fn` throws (fails the test when it throws anything else or nothing). */
export function configError(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    return e as ConfigError;
  }
  throw new Error('expected a ConfigError');
}

/** The message of what `fn` throws (fails the test when it throws nothing). */
export function errorOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    return (err as Error).message;
  }
  throw new Error('expected an error');
}
