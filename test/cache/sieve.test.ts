import { describe, expect, test } from 'bun:test';
import { Sieve, type SieveNode } from '../../src/cache/sieve.ts';

interface Node extends SieveNode {
  id: string;
}
const node = (id: string): Node => ({ id, newer: null, older: null, visited: false });
const never = () => false;

function filled(...ids: string[]) {
  const s = new Sieve<Node>();
  const nodes = Object.fromEntries(ids.map((id) => [id, node(id)]));
  for (const id of ids) s.insert(nodes[id]!);
  return { s, nodes };
}

/** Evicts `n` victims, returning their ids in order. */
function evict(s: Sieve<Node>, n: number, dead: (x: Node) => boolean = never): string[] {
  const out: string[] = [];
  for (let i = 0; i < n; i++) {
    const v = s.victim(dead)!;
    s.remove(v);
    out.push(v.id);
  }
  return out;
}

describe('cache/sieve', () => {
  test('evicts oldest first when nothing was visited', () => {
    const { s } = filled('a', 'b', 'c');
    expect(evict(s, 3)).toEqual(['a', 'b', 'c']);
    expect(s.victim(never)).toBeNull();
    expect(s.size).toBe(0);
  });

  test('passes visited entries once, clearing their bit, when the hand meets them', () => {
    const { s, nodes } = filled('a', 'b', 'c', 'd');
    nodes.a!.visited = true;
    nodes.c!.visited = true;
    expect(evict(s, 1)).toEqual(['b']);
    expect(nodes.a!.visited).toBe(false);
    // The hand goes on from where it stopped (c, visited: passed), then d.
    expect(evict(s, 1)).toEqual(['d']);
    // Wraps to the oldest: a lost its bit on the first pass.
    expect(evict(s, 1)).toEqual(['a']);
  });

  test('takes an entry the caller calls dead even when it was visited', () => {
    const { s, nodes } = filled('a', 'b', 'c');
    nodes.a!.visited = true;
    nodes.b!.visited = true;
    expect(evict(s, 1, (x) => x.id === 'b')).toEqual(['b']);
    expect(nodes.a!.visited).toBe(false);
  });

  test('finds an unvisited one after a full lap when every entry was visited', () => {
    const { s, nodes } = filled('a', 'b', 'c');
    for (const n of Object.values(nodes)) n.visited = true;
    expect(evict(s, 1)).toEqual(['a']);
  });

  test('keeps the list whole when an entry under the hand is removed', () => {
    const { s, nodes } = filled('a', 'b', 'c');
    nodes.a!.visited = true;
    s.victim(never); // hand on b
    s.remove(nodes.b!);
    s.insert(node('d'));
    expect([...s.entries()].map((n) => n.id)).toEqual(['a', 'c', 'd']);
    expect(evict(s, 1)).toEqual(['c']);
  });
});
