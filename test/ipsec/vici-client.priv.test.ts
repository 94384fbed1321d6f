/** The shared VICI suite against a real charon in its own network and mount namespace (root). */
import { describe, test } from 'bun:test';
import { CharonLab, privilegedSkipReason, type LabCharon } from './charon-lab.ts';
import { viciContract } from './vici-contract.ts';

const skip = privilegedSkipReason();
if (skip) {
  console.log(`skipping ipsec/vici-client against charon: ${skip}`);
  describe('ipsec/vici-client against charon', () => {
    test.skip(`needs root, charon and pki: ${skip}`, () => {});
  });
} else {
  viciContract('charon', async () => {
    const lab = new CharonLab();
    const a = lab.netns('vici');
    const b = lab.netns('void');
    // 192.0.2.2 answers ARP but runs no IKE daemon: initiates to it time out.
    lab.link(a, '192.0.2.1/24', b, '192.0.2.2/24');
    let charon: LabCharon = await lab.startCharon('vici', a);
    return {
      socketPath: charon.socketPath,
      unreachableAddr: '192.0.2.2',
      restart: async () => {
        await lab.stopCharon(charon);
        charon = await lab.startCharon('vici', a);
      },
      teardown: () => lab.destroy(),
    };
  });
}
