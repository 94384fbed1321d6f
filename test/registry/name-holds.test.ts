import { describe, expect, test } from 'bun:test';
import {
  clearNames,
  endHolds,
  expiryOf,
  holdName,
  holdNames,
  nameCount,
  namesOf,
  type NameHolds,
  pruneNames,
  releaseName,
} from '../../src/registry/name-holds.ts';

const empty = (): NameHolds => ({ name: undefined, hold: 0, names: undefined });

/** Names and holds as a plain list, whichever way they are kept. */
function holds(h: NameHolds): [string, number][] {
  return h.names ? [...h.names] : h.name === undefined ? [] : [[h.name, h.hold]];
}

describe('registry/name-holds', () => {
  test('keeps one name in the two fields, without a Map, when one name holds the entry', () => {
    const h = empty();
    holdName(h, 'a.example', 100);
    holdName(h, 'a.example', 50); // a later answer never shortens a hold
    expect(h).toEqual({ name: 'a.example', hold: 100, names: undefined });
    holdName(h, 'a.example', 200);
    expect(holds(h)).toEqual([['a.example', 200]]);
    expect([nameCount(h), expiryOf(h)]).toEqual([1, 200]);
  });

  test('moves every name into a Map, in arrival order, when a second name arrives', () => {
    const h = empty();
    holdNames(h, ['a.example', 'b.example'], 100);
    holdName(h, 'c.example', 300);
    holdName(h, 'a.example', 50);
    expect(h.name).toBeUndefined();
    expect(holds(h)).toEqual([
      ['a.example', 100],
      ['b.example', 100],
      ['c.example', 300],
    ]);
    expect([nameCount(h), expiryOf(h), namesOf(h)]).toEqual([3, 300, ['a.example', 'b.example', 'c.example']]);
  });

  test('goes back to the two fields when a release leaves one name', () => {
    const h = empty();
    holdNames(h, ['a.example', 'b.example'], 100);
    releaseName(h, 'a.example');
    expect(h).toEqual({ name: 'b.example', hold: 100, names: undefined });
    releaseName(h, 'x.example'); // not a holder: nothing
    expect(namesOf(h)).toEqual(['b.example']);
    releaseName(h, 'b.example');
    expect([nameCount(h), expiryOf(h), namesOf(h)]).toEqual([0, 0, []]);
  });

  test('drops the names whose hold ran out when another still runs, keeping the last ones', () => {
    const h = empty();
    holdName(h, 'a.example', 100);
    holdName(h, 'b.example', 300);
    pruneNames(h, 200);
    expect(h).toEqual({ name: 'b.example', hold: 300, names: undefined });
    pruneNames(h, 400); // none runs: the names that brought it in stay
    expect(namesOf(h)).toEqual(['b.example']);

    const two = empty();
    holdNames(two, ['a.example', 'b.example'], 100);
    pruneNames(two, 200);
    expect(holds(two)).toEqual([
      ['a.example', 100],
      ['b.example', 100],
    ]);
  });

  test.each([
    ['one name', ['a.example']],
    ['two names', ['a.example', 'b.example']],
  ])('ends every hold that runs past now at now when retired (%s)', (_what, names) => {
    const h = empty();
    holdNames(h, names, 500);
    holdName(h, 'old.example', 50);
    endHolds(h, 200);
    expect(expiryOf(h)).toBe(200);
    expect(holds(h).find(([n]) => n === 'old.example')![1]).toBe(50);
  });

  test('holds nothing when cleared, and takes a new name in the two fields again', () => {
    const h = empty();
    holdNames(h, ['a.example', 'b.example'], 100);
    clearNames(h);
    expect(h).toEqual(empty());
    holdName(h, 'c.example', 0); // an adopted retired entry's hold is 0, still a name
    expect(h).toEqual({ name: 'c.example', hold: 0, names: undefined });
  });
});
