/**
 * The value types settings are made of: each reads a YAML value (errors at its line) and a
 * flag's text (errors as plain messages; the loader puts `--flag: ` in front), so the file and
 * the command line accept exactly the same values. A new kind of value is a new function here.
 */
import { ConfigError, errorMessage } from '../util/errors.ts';
import { formatHostPort, parsedListen, parseHostPort, parseIpLiteral, pinRootPath } from './address.ts';
import { parseCidr } from '../policy/cidr.ts';
import type { ValueType } from './setting.ts';
import type { YamlDoc } from './yaml-doc.ts';
import type { KeyPath } from './yaml-locator.ts';

const last = (texts: readonly string[]): string => texts[texts.length - 1]!;

/** One of `values`; `hidden` ones are accepted but not documented (`datapath: fake`, for tests). */
export function oneOf<const T extends string>(values: readonly T[], hidden: readonly T[] = []): ValueType<T> {
  const shown = values.filter((v) => !hidden.includes(v));
  return {
    doc: shown.map((v) => `\`${v}\``).join(' | '),
    arg: shown.join('|'),
    yaml: (v, doc, path) => doc.oneOf(v, path, values),
    flag: (texts) => {
      const v = last(texts);
      if (!values.includes(v as T)) throw new Error(`must be one of ${values.join(', ')}, not "${v}"`);
      return v as T;
    },
  };
}

/** `true` / `false` in the file; the flag is a switch (given: true, the file's value otherwise). */
export function onOff(): ValueType<boolean> {
  return {
    doc: '`true` | `false`',
    arg: '',
    yaml: (v, d, path) => (typeof v === 'boolean' ? v : d.fail(path, `must be true or false, not ${JSON.stringify(v)}`)),
    flag: (texts) => last(texts) === 'true',
  };
}

/** A whole number in [min, max] of `unit` (`seconds`, `milliseconds`). */
export function wholeNumber(min: number, max: number, unit: string, arg: string): ValueType<number> {
  return {
    doc: unit,
    arg,
    yaml: (v, doc, path) => doc.int(v, path, min, max, unit),
    flag: (texts) => {
      const v = last(texts);
      if (!/^[0-9]+$/.test(v) || Number(v) < min || Number(v) > max) throw new Error(`must be a whole number between ${min} and ${max}, not "${v}"`);
      return Number(v);
    },
  };
}

/** A non-empty string (a path, an identity); `empty` says what an empty flag value lacks. */
export function text(doc: string, arg: string, empty?: string): ValueType<string> {
  return {
    doc,
    arg,
    yaml: (v, d, path, key) => d.str(v, path, key),
    flag: (texts) => {
      const v = last(texts);
      if (v === '' && empty) throw new Error(empty);
      return v;
    },
  };
}

/** `null` in the file means unset (the default applies). */
export function nullable<T>(type: ValueType<T>): ValueType<T> {
  return { ...type, yaml: (v, doc, path, key) => (v === null ? undefined : type.yaml(v, doc, path, key)) };
}

/** A list of non-empty strings; `item` names one for messages (`an interface name`). */
export function stringList(doc: string, arg: string, item: string): ValueType<string[]> {
  return { doc, arg, list: true, yaml: (v, d, path) => d.strList(v, path, item), flag: (texts) => [...texts] };
}

/** ADDR:PORT in the file, with `key: ` before a parse error (a wrong type is reported as it is). */
function yamlHostPort(v: unknown, doc: YamlDoc, path: KeyPath, key: string, defPort: number | null): string {
  const t = doc.str(v, path, key);
  try {
    return formatHostPort(parseHostPort(t, defPort));
  } catch (err) {
    return doc.fail(path, `${key}: ${errorMessage(err)}`);
  }
}

/** A list of ADDR:PORT (IPv6 as `[ADDR]:PORT`), at least one. */
export function hostPortList(doc: string): ValueType<string[]> {
  return {
    doc,
    arg: 'ADDR:PORT',
    list: true,
    yaml: (v, d, path, key) => {
      const raw = v === null ? [] : Array.isArray(v) ? v : [v];
      const out = raw.map((x, i) => yamlHostPort(x, d, [...path, i], key, null));
      if (out.length === 0) d.fail(path, 'needs at least one ADDR:PORT');
      return out;
    },
    flag: (texts) => texts.map((t) => formatHostPort(parseHostPort(t, null))),
  };
}

/** One ADDR:PORT (IPv6 as `[ADDR]:PORT`). */
export function hostPort(doc: string): ValueType<string> {
  return {
    doc,
    arg: 'ADDR:PORT',
    yaml: (v, d, path, key) => yamlHostPort(v, d, path, key, null),
    flag: (texts) => formatHostPort(parseHostPort(last(texts), null)),
  };
}

/** ADDR:PORT, or `off` (also `false`/`null` in the file): unset. */
export function hostPortOrOff(doc: string): ValueType<string> {
  return {
    doc,
    arg: 'ADDR:PORT',
    yaml: (v, d, path, key) => (v === null || v === false || v === 'off' ? undefined : yamlHostPort(v, d, path, key, null)),
    flag: (texts) => {
      const v = last(texts);
      if (v === 'off') return undefined;
      if (/^[0-9]+$/.test(v)) throw new Error(`"${v}" is a port alone: give ADDR:PORT (e.g. 127.0.0.1:${v}), or off`);
      return formatHostPort(parseHostPort(v, null));
    },
  };
}

/** A bare IP literal, normalised. */
export function ipLiteral(doc: string): ValueType<string> {
  return {
    doc,
    arg: 'ADDR',
    yaml: (v, d, path, key) => {
      const t = d.str(v, path, key);
      try {
        return parseIpLiteral(t);
      } catch (err) {
        return d.fail(path, `${key}: ${errorMessage(err)}`);
      }
    },
    flag: (texts) => parseIpLiteral(last(texts)),
  };
}

/** An absolute path below a bpf filesystem mount. */
export function pinRoot(doc: string): ValueType<string> {
  return {
    doc,
    arg: 'PATH',
    yaml: (v, d, path, key) => pinRootPath(d.str(v, path, key), (msg) => d.fail(path, msg)),
    flag: (texts) =>
      pinRootPath(last(texts), (msg) => {
        throw new Error(msg);
      }),
  };
}

/** A `local_ts` item: `dynamic` or a CIDR (normalised); throws a plain Error otherwise. */
export function localTsItem(t: string): string {
  if (t === 'dynamic') return t;
  try {
    return parseCidr(t).text;
  } catch (err) {
    throw new Error(`local_ts: ${errorMessage(err)} (a CIDR like 10.1.0.0/24, or "dynamic")`);
  }
}

/** A list of CIDRs or `dynamic` (traffic selectors), normalised. */
export function selectorList(doc: string): ValueType<string[]> {
  return {
    doc,
    arg: 'CIDR|dynamic',
    list: true,
    yaml: (v, d, path) =>
      d.strList(v, path, 'a CIDR or "dynamic"').map((t, i) => {
        try {
          return localTsItem(t);
        } catch (err) {
          return d.fail(Array.isArray(v) ? [...path, i] : path, errorMessage(err));
        }
      }),
    flag: (texts) => texts.map(localTsItem),
  };
}

/**
 * Normalises each CIDR of a list at the end (a FinalCheck): each bad one is its own problem,
 * reported with the others of the whole configuration.
 */
export function cidrsAtEnd(what: string) {
  return (list: string[], where: string, report: (err: ConfigError) => void): string[] => {
    const out: string[] = [];
    for (const c of list) {
      try {
        out.push(parseCidr(c).text);
      } catch (err) {
        report(new ConfigError(where, `${what}: ${errorMessage(err)}`));
      }
    }
    return out;
  };
}

/**
 * Listen addresses that cannot all be bound (a FinalCheck): a wildcard takes its port on every
 * address of its family — `0.0.0.0` every IPv4 address, `[::]` every IPv6 address — so another
 * address of that family on that port would fail at start with EADDRINUSE. Said here, with both
 * addresses, instead. (`[::]` next to IPv4 addresses is a warning: it also takes IPv4 on a
 * dual-stack machine, check-warnings.ts.)
 */
export function listenOverlaps(list: string[], where: string, report: (err: ConfigError) => void): string[] {
  const parsed = parsedListen(list);
  const v6 = (a: string) => a.includes(':');
  for (const w of parsed) {
    if (w.address !== '0.0.0.0' && w.address !== '::') continue;
    for (const o of parsed) {
      if (o === w || o.port !== w.port || o.address === w.address || v6(o.address) !== v6(w.address)) continue;
      report(
        new ConfigError(
          where,
          `${w.text} and ${o.text} overlap: ${formatHostPort({ address: w.address, port: w.port }).replace(/:\d+$/, '')} takes port ${w.port} on every ${v6(w.address) ? 'IPv6' : 'IPv4'} address, so both cannot be bound — keep one of them`,
        ),
      );
    }
  }
  return list;
}
