/**
 * A UDP and a TCP listener on one free loopback port (a policy server or an upstream stand-in
 * that the proxy reaches over both transports). Port 0 gives UDP a free port; TCP on the same
 * number may be held by another test's outgoing connection (EADDRINUSE), so the pair is picked
 * again, a bounded number of times — the same rule as startProxy's listeners.
 */
import type { QueryHandler } from '../../src/proxy/handler.ts';
import { startTcpListener } from '../../src/proxy/listener-tcp.ts';
import { startUdpListener } from '../../src/proxy/listener-udp.ts';
import type { ProxyCounters } from '../../src/proxy/proxy-counters.ts';
import { silentLogger } from '../../src/util/log.ts';

export interface ListenPair {
  port: number;
  close(): Promise<void>;
}

export async function listenPair(handle: QueryHandler, counters: ProxyCounters, attempts = 10): Promise<ListenPair> {
  for (let attempt = 1; ; attempt++) {
    const udp = await startUdpListener({ hostname: '127.0.0.1', port: 0, handle, counters, log: silentLogger });
    try {
      const tcp = await startTcpListener({ hostname: '127.0.0.1', port: udp.port, handle, counters, log: silentLogger });
      return { port: udp.port, close: async () => void (await Promise.all([udp.close(), tcp.close()])) };
    } catch (err) {
      await udp.close();
      if (attempt >= attempts || (err as { code?: string }).code !== 'EADDRINUSE') throw err;
    }
  }
}
