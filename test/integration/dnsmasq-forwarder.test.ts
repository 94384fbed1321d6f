/**
 * Issue 11 item 8 on the wire, with the real forwarder of the documented OpenWrt setup: dnsmasq
 * (`--add-subnet=32,128 --strip-subnet`, forwarding to dnsseal) in front of the proxy. Every
 * query reaches dnsseal from 127.0.0.1, yet each client's protected answer is registered in
 * its own client group; a client that sends its own client subnet (naming another client) is
 * still classified as itself, and dnsmasq's cache does not answer one group with another
 * group's registration.
 */
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import type { Subprocess } from 'bun';
import { Policy } from '../../src/policy/policy.ts';
import { startProxy, type Proxy } from '../../src/proxy/proxy.ts';
import { proxyOptions } from '../proxy/proxy-options.ts';
import { newProxyCounters } from '../../src/proxy/proxy-counters.ts';
import { clientQuery, withEdnsOptions } from '../fixtures/dns/capture.ts';
import { channels, config, table } from '../policy/fixtures.ts';
import { RecordingRegistry } from '../proxy/doubles.ts';
import { FakeUpstream } from '../proxy/fake-upstream.ts';
import { askUdp } from '../proxy/proxy-fixture.ts';
import { haveBinary, randomPort } from './knot-server.ts';

const HAVE = haveBinary('dnsmasq');
if (!HAVE) console.log('integration/dnsmasq-forwarder: skipped — needs dnsmasq (apt: dnsmasq-base)');

const policy = Policy.fromConfig(
  config({
    channels: channels(['hub', { kind: 'tunnel', gateway: '192.0.2.1' }]),
    tables: [table('default', [['*.corp.example', 'hub']]), table('lan-a', [['*.corp.example', 'hub']]), table('lan-b', [['*.corp.example', 'hub']])],
    clients: [
      { cidr: '127.0.0.2/32', table: 'lan-a' },
      { cidr: '127.0.0.3/32', table: 'lan-b' },
    ],
  }),
);
const A = policy.tableFor('127.0.0.2').group;
const B = policy.tableFor('127.0.0.3').group;

describe.skipIf(!HAVE)('integration/dnsmasq-forwarder', () => {
  let fake: FakeUpstream;
  let proxy: Proxy;
  let dnsmasq: Subprocess;
  let port = 0;
  const registry = new RecordingRegistry();
  const counters = newProxyCounters();

  beforeAll(async () => {
    fake = await FakeUpstream.start((q, t) => t.answerFor(q));
    proxy = await startProxy(
      proxyOptions({ address: '127.0.0.1', port: fake.port }, {
        policy,
        registry,
        counters,
        trustedForwarders: ['127.0.0.1/32'],
      }),
    );
    const proxyPort = proxy.listeners[0]!.port;
    // dnsmasq on a free loopback port (bind failures retried), then wait until it answers
    for (let attempt = 1; ; attempt++) {
      port = randomPort();
      dnsmasq = Bun.spawn(
        [
          'dnsmasq', '--keep-in-foreground', '--conf-file=/dev/null', '--no-hosts', '--no-resolv', '--pid-file=',
          '--bind-interfaces', '--listen-address=127.0.0.1', '--interface=lo', `--port=${port}`,
          `--server=127.0.0.1#${proxyPort}`, '--add-subnet=32,128', '--strip-subnet',
        ],
        { stdout: 'ignore', stderr: 'pipe' },
      );
      const deadline = Date.now() + 5000;
      let up = false;
      while (!up && Date.now() < deadline && dnsmasq.exitCode === null) {
        up = await askUdp(port, clientQuery('ready.public.example', 1), '127.0.0.1').then(() => true, () => false);
        if (!up) await Bun.sleep(20); // poll interval, not a wait for a result
      }
      if (up) break;
      dnsmasq.kill();
      await dnsmasq.exited;
      if (attempt >= 5) throw new Error(`dnsmasq did not answer on 127.0.0.1:${port}: ${await new Response(dnsmasq.stderr as ReadableStream).text()}`);
    }
  });

  afterAll(async () => {
    dnsmasq?.kill();
    await dnsmasq?.exited;
    await proxy?.close();
    fake?.stop();
  });

  test('registers each client\'s answer in its own group when the queries come through dnsmasq', async () => {
    registry.registrations.length = 0;
    expect(new Set([0, A, B]).size).toBe(3);
    await askUdp(port, clientQuery('www.corp.example', 1), '127.0.0.2');
    await askUdp(port, clientQuery('www.corp.example', 1), '127.0.0.3');
    // the same name again from A: dnsmasq did not cache it, dnsseal registers again
    await askUdp(port, clientQuery('www.corp.example', 1), '127.0.0.2');
    expect(registry.registrations.map((r) => r.group)).toEqual([A, B, A]);
    // dnsmasq's client subnet stops at dnsseal
    expect(fake.queries.filter((q) => hasClientSubnet(q.bytes))).toEqual([]);
  });

  test('classifies a client as itself when it sends a client subnet naming another client', async () => {
    registry.registrations.length = 0;
    const spoofed = withEdnsOptions(clientQuery('app.corp.example', 1), [[8, [0, 1, 32, 0, 127, 0, 0, 3]]]);
    await askUdp(port, spoofed, '127.0.0.2');
    expect(registry.registrations.map((r) => r.group)).toEqual([A]);
  });
});

/** True when an upstream query carries an EDNS Client Subnet option (code 8) in its OPT. */
function hasClientSubnet(bytes: Uint8Array): boolean {
  // the proxy's upstream query: header, question, then its own OPT (root, type 41, …, rdlen, options)
  let p = 12;
  while (bytes[p] !== 0) p += bytes[p]! + 1;
  p += 5; // root of the question name, type, class
  const rdLen = (bytes[p + 9]! << 8) | bytes[p + 10]!;
  for (let o = p + 11; o + 4 <= p + 11 + rdLen; o += 4 + ((bytes[o + 2]! << 8) | bytes[o + 3]!)) if (((bytes[o]! << 8) | bytes[o + 1]!) === 8) return true;
  return false;
}
