/**
 * Domain-name normalisation shared by patterns and queried names: lower case, no root dot,
 * IDN as A-labels (punycode). Matching is label-wise, so the helpers also split labels.
 */
import { domainToASCII } from 'node:url';

const ASCII_NAME = /^[\x21-\x7e]*$/;
const LABEL = /^[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?$/;

/**
 * A queried name in canonical form, or null when it cannot be a host name (empty labels,
 * non-ASCII that does not convert). Fast path for what DNS puts on the wire: ASCII.
 */
export function normalizeName(name: string): string | null {
  let n = name.length > 0 && name.charCodeAt(name.length - 1) === 46 ? name.slice(0, -1) : name;
  if (!ASCII_NAME.test(n)) {
    n = domainToASCII(n);
    if (n === '') return null;
  }
  return n.toLowerCase();
}

/**
 * Converts one fixed (non-wildcard) part of a pattern to canonical A-labels, or throws with
 * a message saying which label is wrong.
 */
export function canonicalLabels(text: string): string[] {
  let t = text.toLowerCase();
  if (!ASCII_NAME.test(t)) {
    const a = domainToASCII(t);
    if (a === '') throw new Error(`"${text}" is not a valid internationalised domain name`);
    t = a.toLowerCase();
  }
  const labels = t.split('.');
  for (const l of labels) {
    if (l === '') throw new Error(`"${text}" has an empty label`);
    if (l.length > 63) throw new Error(`label "${l}" is longer than 63 characters`);
    if (!LABEL.test(l)) throw new Error(`label "${l}" may only hold letters, digits, "-" and "_" (and not start or end with "-")`);
  }
  if (t.length > 253) throw new Error(`"${text}" is longer than 253 characters`);
  return labels;
}
