/**
 * Client groups that would silently not match (issue 11 item 8) are refused at load time (so by
 * `check` and `run`), each at its line: host mode with clients, non-default static tables or
 * trusted forwarders; clients a loopback-only listener can never see; trusted forwarders that
 * overlap a client range or trust a whole family. A policy server's file is not a node's: its
 * clients are the tables it serves.
 */
import { describe, expect, test } from 'bun:test';
import { loadConfigText } from '../../src/config/load.ts';
import { deps } from './fixtures.ts';

const CH = 'channels:\n  hub: { kind: tunnel, gateway: 192.0.2.1 }\ntables:\n  default: []\n  "502": []\n';
const load = (text: string, role: 'node' | 'policy-server' = 'node') => loadConfigText(`upstreams: {default: 192.0.2.53}\n${CH}${text}`, 'c.yaml', new Map(), deps(), role);

function loadErr(text: string): string {
  try {
    load(text);
  } catch (e) {
    return (e as Error).message;
  }
  throw new Error('expected the config to be refused');
}

describe('config: client classification', () => {
  test.each([
    ['host mode with clients:', 'mode: host\nclients:\n  - { cidr: 10.0.0.0/8, table: "502" }\n', 'c.yaml:9: client 10.0.0.0/8: mode host classifies every query'],
    ['host mode with a static of another table', 'mode: host\nstatic:\n  - { cidr: 192.0.2.9, channel: hub, table: "502" }\n', 'c.yaml:9: static 192.0.2.9: mode host protects only table default'],
    ['host mode with trusted forwarders', 'mode: host\ntrusted_forwarders: [127.0.0.1/32]\n', 'c.yaml:8: trusted_forwarders: mode host has no clients to name'],
    ['gateway clients behind a loopback-only listener', 'mode: gateway\nlan: [lan0]\nlisten: ["127.0.0.1:5353"]\nclients:\n  - { cidr: 10.0.0.0/8, table: "502" }\n', 'c.yaml:11: clients: can never match: dnsseal listens on loopback only'],
    ['a trusted forwarder overlapping a client range', 'mode: gateway\nlan: [lan0]\nlisten: ["10.0.0.1:53"]\ntrusted_forwarders: [10.1.0.1/32]\nclients:\n  - { cidr: 10.0.0.0/8, table: "502" }\n', 'c.yaml:10: trusted forwarder 10.1.0.1/32 overlaps client 10.0.0.0/8'],
    ['a trusted forwarder of a whole family', 'mode: gateway\nlan: [lan0]\ntrusted_forwarders: ["::/0"]\n', 'c.yaml:9: trusted forwarder ::/0 trusts every sender'],
  ])('refuses %s at its line', (_what, text, message) => {
    expect(loadErr(text)).toStartWith(message);
  });

  test.each([
    ['gateway clients with a trusted forwarder in front', 'mode: gateway\nlan: [lan0]\nlisten: ["127.0.0.1:5353"]\ntrusted_forwarders: [127.0.0.1/32]\nclients:\n  - { cidr: 10.0.0.0/8, table: "502" }\n'],
    ['gateway clients that are loopback addresses themselves', 'mode: gateway\nlan: [lo]\nlisten: ["127.0.0.1:5353"]\nclients:\n  - { cidr: 127.0.0.2/32, table: "502" }\n'],
    ['gateway clients on a LAN listener', 'mode: gateway\nlan: [lan0]\nlisten: ["10.0.0.1:53"]\nclients:\n  - { cidr: 10.0.0.0/8, table: "502" }\n'],
    ['host mode statics of the default table', 'mode: host\nstatic:\n  - { cidr: 192.0.2.9, channel: hub }\n'],
  ])('accepts %s', (_what, text) => {
    expect(() => load(text)).not.toThrow();
  });

  test('a policy server file keeps its clients whatever the mode says', () => {
    expect(load('clients:\n  - { cidr: 10.0.0.0/8, table: "502" }\n', 'policy-server').clients).toEqual([{ cidr: '10.0.0.0/8', table: '502' }]);
  });
});
