import { describe, expect, test } from 'bun:test';
import { assignGroups, tableGroup } from '../../src/policy/group.ts';

describe('policy/group', () => {
  test.each([
    ['default', 0],
    ['1', 1],
    ['502', 502],
    ['4294967295', 4294967295],
  ])('maps table %p to group %p', (id, g) => expect(tableGroup(id)).toBe(g));

  test('maps a name to a stable number with the top bit set when the id is not numeric', () => {
    const g = tableGroup('engineering');
    expect(g).toBe(tableGroup('engineering'));
    expect(g >>> 31).toBe(1);
    expect(g).not.toBe(tableGroup('sales'));
  });

  test.each([
    ['0', /reserved/],
    ['4294967296', /32 bits/],
    ['bad name!', /must be a number or a name/],
  ])('refuses table id %p', (id, msg) => expect(() => tableGroup(id)).toThrow(msg));

  test('detects a collision when two ids land on one group', () => {
    const hashed = tableGroup('engineering');
    expect(() => assignGroups(['engineering', String(hashed)])).toThrow(/same group number/);
  });
});
