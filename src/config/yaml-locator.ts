/**
 * Bun.YAML.parse gives values but no positions. This walks the block-style YAML text and
 * records the line of every mapping key and sequence item by its key path, so validation
 * errors can say `file:line`. Flow collections (`{…}`, `[…]`) are not entered: their
 * children report their parent's line. It also notices what the parser silently accepts
 * or reports without a line: duplicate keys, unquoted `*` patterns (YAML aliases).
 */

export type KeyPath = ReadonlyArray<string | number>;

export interface YamlLocations {
  /** 1-based line of the path, or of its nearest recorded ancestor (1 if none). */
  lineOf(path: KeyPath): number;
  /** Keys that appear twice in one mapping (the parser keeps the last one silently). */
  duplicates: { path: string[]; line: number }[];
  /** Lines whose value starts with an unquoted `*` (a YAML alias, not a pattern). */
  aliasLines: number[];
}

interface Frame {
  indent: number;
  path: (string | number)[];
  kind: 'map' | 'seq';
  count: number;
}

const pathKey = (p: KeyPath) => p.map(String).join('\u0000');

/** Removes a trailing comment (a `#` after whitespace, outside quotes). */
function stripComment(s: string): string {
  let q: string | null = null;
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (q) {
      if (c === q) q = null;
      else if (c === '\\' && q === '"') i++;
    } else if (c === '"' || c === "'") {
      if (i === 0 || /[\s:\-[{,]/.test(s[i - 1]!)) q = c;
    } else if (c === '#' && (i === 0 || /\s/.test(s[i - 1]!))) {
      return s.slice(0, i).trimEnd();
    }
  }
  return s.trimEnd();
}

/** Splits `key: value` (key plain or quoted); null when the text is not a mapping entry. */
function splitKey(text: string): { key: string; value: string } | null {
  let m = /^"((?:[^"\\]|\\.)*)"\s*:(?:\s+|$)(.*)$/.exec(text);
  if (m) return { key: JSON.parse(`"${m[1]}"`) as string, value: m[2] ?? '' };
  m = /^'((?:[^']|'')*)'\s*:(?:\s+|$)(.*)$/.exec(text);
  if (m) return { key: m[1]!.replace(/''/g, "'"), value: m[2] ?? '' };
  if (/^[[{"'|>&*!%@`]/.test(text)) return null;
  m = /^(.*?)\s*:(?:\s+|$)(.*)$/.exec(text);
  if (!m || m[1] === '') return null;
  return { key: m[1]!, value: m[2] ?? '' };
}

function bracketDepth(s: string): number {
  let d = 0;
  let q: string | null = null;
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (q) {
      if (c === q) q = null;
      else if (c === '\\' && q === '"') i++;
    } else if (c === '"' || c === "'") q = c;
    else if (c === '[' || c === '{') d++;
    else if (c === ']' || c === '}') d--;
  }
  return d;
}

export function locateYaml(text: string): YamlLocations {
  const lines = new Map<string, number>();
  const duplicates: { path: string[]; line: number }[] = [];
  const aliasLines: number[] = [];
  const stack: Frame[] = [];
  let pending: { path: (string | number)[]; indent: number } | null = null;
  let blockIndent = -1; // inside a `|`/`>` scalar owned by a key at this indent
  let flowDepth = 0; // inside a multi-line flow collection

  const record = (path: (string | number)[], line: number) => {
    const k = pathKey(path);
    if (lines.has(k) && typeof path[path.length - 1] === 'string') {
      duplicates.push({ path: path.map(String), line });
    } else if (!lines.has(k)) {
      lines.set(k, line);
    }
  };

  const afterValue = (value: string, indent: number, path: (string | number)[], line: number) => {
    if (value === '') {
      pending = { path, indent };
    } else if (/^[|>]/.test(value)) {
      blockIndent = indent;
    } else if (/^[[{]/.test(value)) {
      flowDepth = Math.max(0, bracketDepth(value));
    } else if (/^\*/.test(value)) {
      aliasLines.push(line);
    }
  };

  const content = (col: number, text: string, line: number): void => {
    if (pending) {
      const isItem = text === '-' || text.startsWith('- ');
      if (col > pending.indent || (col === pending.indent && isItem)) {
        stack.push({ indent: col, path: pending.path, kind: isItem ? 'seq' : 'map', count: -1 });
      }
      pending = null;
    }
    if (text === '-' || text.startsWith('- ')) {
      while (stack.length && stack[stack.length - 1]!.indent > col) stack.pop();
      let top = stack[stack.length - 1];
      if (!top || top.indent !== col || top.kind !== 'seq') {
        top = { indent: col, path: top && top.indent === col ? top.path : [], kind: 'seq', count: -1 };
        stack.push(top);
      }
      top.count++;
      const itemPath = [...top.path, top.count];
      record(itemPath, line);
      const rest = text.slice(1).trimStart();
      const restCol = col + (text.length - rest.length);
      if (rest === '') {
        pending = { path: itemPath, indent: col };
        return;
      }
      if (rest.startsWith('- ') || rest === '-' || splitKey(rest)) {
        pending = { path: itemPath, indent: col };
        content(restCol, rest, line);
        return;
      }
      afterValue(rest, col, itemPath, line);
      return;
    }
    const kv = splitKey(text);
    if (!kv) return; // continuation of a multi-line scalar
    while (stack.length) {
      const top = stack[stack.length - 1]!;
      if (top.indent > col || (top.indent === col && top.kind === 'seq')) stack.pop();
      else break;
    }
    let top = stack[stack.length - 1];
    if (!top || top.indent !== col) {
      top = { indent: col, path: top ? top.path : [], kind: 'map', count: -1 };
      stack.push(top);
    }
    const keyPath = [...top.path, kv.key];
    record(keyPath, line);
    afterValue(kv.value, col, keyPath, line);
  };

  const all = text.split(/\r?\n/);
  for (let i = 0; i < all.length; i++) {
    const raw = all[i]!;
    const line = i + 1;
    const body = stripComment(raw);
    const trimmed = body.trimStart();
    const col = body.length - trimmed.length;
    if (blockIndent >= 0) {
      if (trimmed === '' || col > blockIndent) continue;
      blockIndent = -1;
    }
    if (flowDepth > 0) {
      flowDepth += bracketDepth(body);
      if (flowDepth < 0) flowDepth = 0;
      continue;
    }
    if (trimmed === '' || trimmed === '---' || trimmed === '...' || trimmed.startsWith('%')) continue;
    content(col, trimmed, line);
  }

  return {
    lineOf(path: KeyPath): number {
      for (let n = path.length; n > 0; n--) {
        const hit = lines.get(pathKey(path.slice(0, n)));
        if (hit !== undefined) return hit;
      }
      return 1;
    },
    duplicates,
    aliasLines,
  };
}
