/**
 * The tc library's shared suite against the real kernel (root): in a network namespace of its
 * own, on ifb interfaces, through fixtures/tc-contract-runner.ts (a child process, since tc
 * hooks and interface indexes are per namespace).
 */
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { bunBin, delNs, sh } from '../../../netns/netns.ts';
import { privSkipReason, scratchPinRoot, wipe } from '../helpers.ts';
import { TC_CASES } from './tc-contract.ts';

const skip = privSkipReason() ?? (sh(['which', 'nsenter']).code !== 0 ? 'nsenter missing' : undefined);
if (skip) console.log(`tc contract (real kernel): skipping: ${skip}`);

(skip ? describe.skip : describe)('datapath/ebpf/lib tc contract: real kernel', () => {
  const ns = `dnsseal-tcc${process.pid % 10000}`;
  const root = scratchPinRoot('tccontract');
  let results: Record<string, string> = {};

  beforeAll(async () => {
    await wipe(root);
    delNs(ns);
    sh(['ip', 'netns', 'add', ns], { ok: true });
    const r = sh(['nsenter', `--net=/run/netns/${ns}`, bunBin(), 'test/datapath/ebpf/lib/fixtures/tc-contract-runner.ts', root], { timeoutMs: 60_000 });
    if (r.code !== 0) throw new Error(`tc contract runner failed (${r.code}): ${r.err}`);
    results = JSON.parse(r.out.trim().split('\n').pop()!) as Record<string, string>;
  }, 90_000);

  afterAll(async () => {
    delNs(ns);
    await wipe(root);
  });

  test.each(TC_CASES.map((c) => [c.name]))('%s', (name) => {
    expect(results[name]).toBe('ok');
  });
});
