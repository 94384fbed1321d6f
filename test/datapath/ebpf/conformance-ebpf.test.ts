/** The shared Datapath conformance suite against the real kernel maps (root only). */
import { afterAll, describe, test } from 'bun:test';
import { datapathConformance } from '../conformance.ts';
import { makeDp, privSkipReason, scratchPinRoot, wipe } from './helpers.ts';

const skip = privSkipReason();
const ROOT = scratchPinRoot('conf');

if (skip) {
  console.log(`conformance-ebpf: skipping: ${skip}`);
  describe.skip('datapath conformance: ebpf', () => test('needs root', () => {}));
} else {
  afterAll(() => wipe(ROOT));
  datapathConformance(
    'ebpf',
    async () => {
      await wipe(ROOT); // every case starts from an EMPTY map
      return makeDp(ROOT, { capacity: 64 });
    },
    { capacity: 64 },
  );
}
