/**
 * The patent's figure 6: per-client tables. Client 1.2.3.4 uses table 1, 5.6.7.8 uses
 * table 2, and 133.11.23.24 falls in a group whose table has no rule for
 * kojima.jinji.nec.com. The figure's 3DES/DES ciphers are replaced by AEAD ones; the literal
 * 3DES row is refused.
 */
import { describe, expect, test } from 'bun:test';
import { loadConfig } from '../../src/config/load.ts';
import { Policy } from '../../src/policy/policy.ts';
import { explain } from '../../src/policy/explain.ts';
import { deps, flags } from '../config/fixtures.ts';

const FIG6 = (espTable1: string) => `mode: gateway
lan: [lan0]
upstreams:
  default: 192.0.2.53
channels:
  nec-hq:
    kind: peer
    identity: "%name"
    esp: ${espTable1}
  nec-jinji:
    kind: tunnel
    gateway: 192.0.2.20
    identity: jinji-gw.nec.example
    esp: aes128gcm16
  campus:
    kind: peer
    esp: chacha20poly1305
clients:
  - cidr: 1.2.3.4
    table: 1
  - cidr: 5.6.7.8
    table: 2
  - cidr: 133.11.0.0/16
    table: 3
tables:
  1:
    - match: kojima.jinji.nec.com
      channel: nec-hq
  2:
    - match: "*.jinji.nec.com"
      channel: nec-jinji
  3:
    - match: "*.u-tokyo.ac.jp"
      channel: campus
listen: ["192.0.2.1:53"]
`;

function policy(esp = 'aes256gcm16'): Policy {
  return Policy.fromConfig(loadConfig(flags(['config', 'fig6.yaml']), deps({ 'fig6.yaml': FIG6(esp) })));
}

describe('policy figure 6', () => {
  const p = policy();

  test.each([
    ['1.2.3.4', '1', 'kojima.jinji.nec.com', 'nec-hq', 'aes256gcm16'],
    ['5.6.7.8', '2', '*.jinji.nec.com', 'nec-jinji', 'aes128gcm16'],
    ['133.11.23.24', '3', null, null, null],
    ['192.0.2.99', 'default', null, null, null],
  ])('client %p consults table %p for kojima.jinji.nec.com', (client, table, pattern, channel, esp) => {
    const e = explain(p, 'kojima.jinji.nec.com', client);
    expect(e.table).toBe(table);
    expect(e.rule?.pattern ?? null).toBe(pattern);
    expect(e.channel?.name ?? null).toBe(channel);
    expect(e.channel?.esp ?? null).toBe(esp);
  });

  test('gives each numeric table its number as the kernel group', () => {
    expect(p.tables().map((t) => [t.id, t.group])).toEqual([
      ['1', 1],
      ['2', 2],
      ['3', 3],
    ]);
    expect(p.decide('5.6.7.8', ['x.jinji.nec.com']).group).toBe(2);
  });

  test('resolves %name to the queried name for table 1', () => {
    expect(explain(p, 'kojima.jinji.nec.com', '1.2.3.4').channel?.peerIdentity).toBe('kojima.jinji.nec.com');
  });

  test.each(['3des', '3des-sha1-modp1024', 'des'])('refuses the figure literal cipher %p with a clear message', (esp) => {
    expect(() => policy(esp)).toThrow(
      /^fig6\.yaml:9: channel "nec-hq": esp ".*" refused: .*(3DES|DES).*use an AEAD proposal such as aes256gcm16.*\(used by table 1 rule 0 "kojima\.jinji\.nec\.com"\)$/,
    );
  });
});
