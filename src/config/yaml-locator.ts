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
  /** The shortest key path recorded at a line (what a `file:line` message is about), if any. */
  pathAt(line: number): KeyPath | undefined;
}

/** A recorded key or item: its line, and its children (mapping keys or sequence items). */
interface Node {
  line: number;
  keys?: Map<string, Node>;
  items?: Node[];
  /** Key path, kept only for duplicate reports. */
  path: string[];
}

interface Frame {
  indent: number;
  node: Node;
  kind: 'map' | 'seq';
}

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
  const c0 = text.charCodeAt(0);
  if (c0 === 34 /* " */) {
    const m = /^"((?:[^"\\]|\\.)*)"\s*:(?:\s+|$)(.*)$/.exec(text);
    return m ? { key: JSON.parse(`"${m[1]}"`) as string, value: m[2] ?? '' } : null;
  }
  if (c0 === 39 /* ' */) {
    const m = /^'((?:[^']|'')*)'\s*:(?:\s+|$)(.*)$/.exec(text);
    return m ? { key: m[1]!.replace(/''/g, "'"), value: m[2] ?? '' } : null;
  }
  if (/^[[{|>&*!%@`]/.test(text)) return null;
  // a plain key ends at the first ":" followed by a blank or the end of the line
  let i = text.indexOf(':');
  while (i >= 0 && i + 1 < text.length && text[i + 1] !== ' ' && text[i + 1] !== '\t') i = text.indexOf(':', i + 1);
  if (i <= 0) return null;
  const key = text.slice(0, i).trimEnd();
  return key === '' ? null : { key, value: text.slice(i + 1).trim() };
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
  const root: Node = { line: 1, path: [] };
  const duplicates: { path: string[]; line: number }[] = [];
  const aliasLines: number[] = [];
  const stack: Frame[] = [];
  let pending: { node: Node; indent: number } | null = null;
  let blockIndent = -1; // inside a `|`/`>` scalar owned by a key at this indent
  let flowDepth = 0; // inside a multi-line flow collection

  const recordKey = (parent: Node, key: string, line: number): Node => {
    const keys = (parent.keys ??= new Map());
    const had = keys.get(key);
    if (had) {
      duplicates.push({ path: [...parent.path, key], line });
      return had;
    }
    const node: Node = { line, path: [...parent.path, key] };
    keys.set(key, node);
    return node;
  };
  const recordItem = (parent: Node, line: number): Node => {
    const items = (parent.items ??= []);
    const node: Node = { line, path: [...parent.path, String(items.length)] };
    items.push(node);
    return node;
  };

  const afterValue = (value: string, indent: number, node: Node, line: number) => {
    if (value === '') {
      pending = { node, indent };
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
        stack.push({ indent: col, node: pending.node, kind: isItem ? 'seq' : 'map' });
      }
      pending = null;
    }
    if (text === '-' || text.startsWith('- ')) {
      while (stack.length && stack[stack.length - 1]!.indent > col) stack.pop();
      let top = stack[stack.length - 1];
      if (!top || top.indent !== col || top.kind !== 'seq') {
        top = { indent: col, node: top && top.indent === col ? top.node : root, kind: 'seq' };
        stack.push(top);
      }
      const item = recordItem(top.node, line);
      const rest = text.slice(1).trimStart();
      const restCol = col + (text.length - rest.length);
      if (rest === '') {
        pending = { node: item, indent: col };
        return;
      }
      if (rest.startsWith('- ') || rest === '-' || splitKey(rest)) {
        pending = { node: item, indent: col };
        content(restCol, rest, line);
        return;
      }
      afterValue(rest, col, item, line);
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
      top = { indent: col, node: top ? top.node : root, kind: 'map' };
      stack.push(top);
    }
    afterValue(kv.value, col, recordKey(top.node, kv.key, line), line);
  };

  let byLine: Map<number, KeyPath> | undefined;
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
      let node = root;
      for (const seg of path) {
        const next = typeof seg === 'number' ? node.items?.[seg] : node.keys?.get(seg);
        if (!next) break;
        node = next;
      }
      return node.line;
    },
    duplicates,
    aliasLines,
    pathAt(line: number): KeyPath | undefined {
      byLine ??= indexLines(root);
      return byLine.get(line);
    },
  };
}

/** line → the shortest path recorded there (breadth first: a parent before its children). */
function indexLines(root: Node): Map<number, KeyPath> {
  const out = new Map<number, KeyPath>();
  let level: Array<{ node: Node; path: (string | number)[] }> = [{ node: root, path: [] }];
  while (level.length) {
    const next: typeof level = [];
    for (const { node, path } of level) {
      if (path.length && !out.has(node.line)) out.set(node.line, path);
      for (const [k, child] of node.keys ?? []) next.push({ node: child, path: [...path, k] });
      (node.items ?? []).forEach((child, i) => next.push({ node: child, path: [...path, i] }));
    }
    level = next;
  }
  return out;
}
