/**
 * Every map lookup in the loaded programs is inlined or a direct call (root only): the verifier
 * does that only when each lookup call instruction sees a single map. Clang merges the tails of
 * two branches that look up different maps (dnsseal_dests4 / _dests6) into one call; the
 * verifier then keeps the generic bpf_map_lookup_elem helper and an indirect call on every
 * packet. bpf/lib/lookup.h DNSSEAL_LOOKUP keeps the calls apart; this reads the translated
 * programs (bpftool prog dump xlated) for any generic lookup left.
 */
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { PinPaths, PROGS } from '../../src/datapath/ebpf/pins.ts';
import { ICPT_PROGS, icptProgPath } from '../../src/intercept/ebpf-loader.ts';
import { realClock } from '../../src/util/clock.ts';
import { scratchPinRoot, wipe } from '../datapath/ebpf/helpers.ts';
import { icptSkipReason, loadNat } from '../intercept/helpers.ts';

const skip = icptSkipReason() ?? (Bun.which('bpftool') ? undefined : 'bpftool missing');
if (skip) console.log(`bpf inline lookups: skipping: ${skip}`);
const ROOT = scratchPinRoot('inline');

function xlatedCalls(pin: string): string[] {
  const r = Bun.spawnSync(['bpftool', 'prog', 'dump', 'xlated', 'pinned', pin], { stdout: 'pipe', stderr: 'pipe' });
  if (r.exitCode !== 0) throw new Error(`bpftool prog dump xlated ${pin}: ${r.stderr.toString()}`);
  return r.stdout
    .toString()
    .split('\n')
    .filter((l) => /\bcall\b/.test(l));
}

(skip ? describe.skip : describe)('bpf map lookups (xlated programs)', () => {
  let close = () => {};
  beforeAll(async () => {
    await wipe(ROOT);
    const { dp, store } = loadNat(ROOT, realClock);
    close = () => {
      store.close();
      dp.close();
    };
  });
  afterAll(async () => {
    close();
    await wipe(ROOT);
  });

  const paths = new PinPaths(ROOT);
  const progs: [string, () => string][] = [
    ...Object.values(PROGS).map((p) => [p, () => paths.prog(p)] as [string, () => string]),
    ...Object.values(ICPT_PROGS).map((p) => [p, () => icptProgPath(paths, p)] as [string, () => string]),
  ];

  test.each(progs)('%s has no generic bpf_map_lookup_elem call when loaded', (_name, pin) => {
    const calls = xlatedCalls(pin());
    expect(calls.length).toBeGreaterThan(0); // the dump names calls: the check below can see one
    expect(calls.filter((l) => /\bbpf_map_lookup_elem\b/.test(l))).toEqual([]);
  });

  test('the destination lookups of the guard are inlined hash lookups when loaded', () => {
    const calls = xlatedCalls(paths.prog(PROGS.wanOut));
    expect(calls.some((l) => l.includes('__htab_map_lookup_elem'))).toBe(true);
  });
});
