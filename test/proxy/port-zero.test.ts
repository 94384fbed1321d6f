import { describe, expect, test } from 'bun:test';
import { startProxy } from '../../src/proxy/proxy.ts';
import { proxyOptions } from './proxy-options.ts';
import type { RegistryApi } from '../../src/registry/types.ts';

const registry: RegistryApi = { register: async () => {}, list: () => [] };
const policy = {
  decide: () => ({ table: 'default', group: 0, rule: null, channel: null, upstream: null }),
  preDecide: () => ({ table: 'default', group: 0, rule: null, channel: null, upstream: null }),
};

describe('proxy/startProxy', () => {
  test('serves UDP and TCP on one port picked anew when the TCP side of the first pick is taken', async () => {
    // Hold TCP ports so that a UDP pick is likely to collide; whatever happens, the proxy
    // must end with UDP and TCP on the same port.
    const held = await Promise.all(
      Array.from({ length: 20 }, () => Bun.listen({ hostname: '127.0.0.1', port: 0, socket: { data() {} } })),
    );
    try {
      for (let i = 0; i < 10; i++) {
        const proxy = await startProxy(
          proxyOptions({ address: '127.0.0.1', port: 9 }, {
            upstreamTimeoutMs: 200,
            policy,
            registry,
          }),
        );
        const ports = proxy.listeners.map((l) => `${l.transport}:${l.port}`);
        expect(proxy.listeners.map((l) => l.transport).sort()).toEqual(['tcp', 'udp']);
        expect(new Set(proxy.listeners.map((l) => l.port)).size).toBe(1);
        expect(held.some((h) => ports.includes(`tcp:${h.port}`))).toBe(false);
        await proxy.close();
      }
    } finally {
      for (const h of held) h.stop(true);
    }
  });
});
