/** The small grammars structured flags share: `NAME=VALUE` and `HEAD,key=value,…`. */
import { ConfigError } from '../../util/errors.ts';

/** `NAME=VALUE` split at the first "="; `shape` says what was expected. */
export function flagPair(flag: string, v: string, shape: string): [string, string] {
  const eq = v.indexOf('=');
  if (eq <= 0 || eq === v.length - 1) throw new ConfigError(`--${flag}`, `"${v}" is not ${shape}`);
  return [v.slice(0, eq), v.slice(eq + 1)];
}

/** `head,key=value,…` → head and options; refuses options not in `allowed`. */
export function flagOptions(flag: string, text: string, allowed: string[]): { head: string; opts: Map<string, string> } {
  const [head, ...rest] = text.split(',');
  const opts = new Map<string, string>();
  for (const o of rest) {
    const eq = o.indexOf('=');
    const k = eq < 0 ? o : o.slice(0, eq);
    if (!allowed.includes(k) || eq < 0) {
      throw new ConfigError(`--${flag}`, `unknown option "${o}" (allowed: ${allowed.map((a) => `${a}=…`).join(', ')})`);
    }
    opts.set(k, o.slice(eq + 1));
  }
  return { head: head!, opts };
}
