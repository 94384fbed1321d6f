import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FakeCharon } from '../../src/ipsec/fake-charon.ts';
import { viciContract } from './vici-contract.ts';

viciContract('FakeCharon', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'dnsseal-fake-vici-'));
  const unreachableAddr = '192.0.2.99';
  const fake = await FakeCharon.start(join(dir, 'charon.vici'));
  fake.outcome = (_ike, conn) => ((conn.remote_addrs as string[])[0] === unreachableAddr ? 'unreachable' : 'up');
  return {
    socketPath: fake.socketPath,
    unreachableAddr,
    restart: () => fake.restart(),
    teardown: async () => {
      await fake.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
});
