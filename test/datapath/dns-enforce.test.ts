import { describe, expect, test } from 'bun:test';
import { FakeDnsEnforcer, NftDnsEnforcer, familyTargets, parseCounters, renderRuleset } from '../../src/datapath/dns-enforce.ts';
import { DnssealError } from '../../src/util/errors.ts';

describe('datapath/dns-enforce', () => {
  test('renders redirect to the LAN listen address per family and drops DoT, DoQ when listening on specific addresses', () => {
    const t = renderRuleset({ mode: 'redirect', lan: ['lan0', 'eth0.100'], listen: ['10.0.1.1:53', '[fd00:1::1]:5353', '127.0.0.53:53'] });
    expect(t).toBe(`table inet dnsseal_enforce
delete table inet dnsseal_enforce
table inet dnsseal_enforce {
\tcounter dns_redirected { }
\tcounter dns_dropped { }
\tcounter dot_dropped { }
\tcounter doq_dropped { }
\tchain lan_filter {
\t\ttype filter hook prerouting priority mangle; policy accept;
\t\tiifname != { "lan0", "eth0.100" } return
\t\ttcp dport 853 counter name "dot_dropped" drop
\t\tudp dport 853 counter name "doq_dropped" drop
\t}
\tchain lan_nat {
\t\ttype nat hook prerouting priority dstnat; policy accept;
\t\tiifname != { "lan0", "eth0.100" } return
\t\tmeta nfproto ipv4 meta l4proto { tcp, udp } th dport 53 ip daddr != { 10.0.1.1 } counter name "dns_redirected" dnat ip to 10.0.1.1:53
\t\tmeta nfproto ipv6 meta l4proto { tcp, udp } th dport 53 ip6 daddr != { fd00:1::1 } counter name "dns_redirected" dnat ip6 to [fd00:1::1]:5353
\t}
}
`);
  });

  test('redirects to the arrival address when listening on the unspecified address, and drops a family served only on loopback', () => {
    const t = renderRuleset({ mode: 'redirect', lan: ['lan0'], listen: ['0.0.0.0:53', '[::1]:53'] });
    expect(t).toContain('meta nfproto ipv4 meta l4proto { tcp, udp } th dport 53 fib daddr type != local counter name "dns_redirected" redirect to :53');
    expect(t).toContain('meta nfproto ipv6 meta l4proto { tcp, udp } th dport 53 counter name "dns_dropped" drop');
  });

  test('drop mode has no NAT chain and drops plain DNS not addressed to dnsseal', () => {
    const t = renderRuleset({ mode: 'drop', lan: ['lan0'], listen: ['10.0.1.1:53'] });
    expect(t).not.toContain('lan_nat');
    expect(t).toContain('ip daddr != { 10.0.1.1 } counter name "dns_dropped" drop');
  });

  test.each([
    ['off', { mode: 'off' as const, lan: ['lan0'], listen: ['10.0.1.1:53'] }],
    ['no LAN interface', { mode: 'drop' as const, lan: [], listen: ['10.0.1.1:53'] }],
  ])('renders only the removal when %s', (_what, plan) => {
    expect(renderRuleset(plan)).toBe('table inet dnsseal_enforce\ndelete table inet dnsseal_enforce\n');
  });

  test('refuses an interface name the kernel would not accept instead of writing it into the rules', () => {
    expect(() => renderRuleset({ mode: 'drop', lan: ['lan0" } accept; #'], listen: ['10.0.1.1:53'] })).toThrow(/is not an interface name/);
  });

  test('refuses a listen address that is not ADDR:PORT with an enforce error', () => {
    expect(() => renderRuleset({ mode: 'drop', lan: ['lan0'], listen: ['router.lan:53'] })).toThrow(DnssealError);
  });

  test('family targets ignore loopback and note the unspecified address', () => {
    expect(familyTargets(['127.0.0.53:53', '10.0.1.1:53', '[::]:53'])).toEqual({
      v4: { addresses: ['10.0.1.1'], any: false, port: 53 },
      v6: { addresses: [], any: true, port: 53 },
    });
  });

  test('parses nft counter JSON of its own table and ignores others', () => {
    const json = JSON.stringify({
      nftables: [
        { metainfo: { version: '1.0.6' } },
        { counter: { family: 'inet', name: 'dns_redirected', table: 'dnsseal_enforce', handle: 1, packets: 7, bytes: 420 } },
        { counter: { family: 'inet', name: 'dot_dropped', table: 'dnsseal_enforce', handle: 3, packets: 2, bytes: 120 } },
        { counter: { family: 'inet', name: 'dns_redirected', table: 'other', handle: 1, packets: 99, bytes: 1 } },
      ],
    });
    const c = parseCounters(json);
    expect(c.dns_redirected).toEqual({ packets: 7, bytes: 420 });
    expect(c.dot_dropped).toEqual({ packets: 2, bytes: 120 });
    expect(c.dns_dropped).toEqual({ packets: 0, bytes: 0 });
    expect(() => parseCounters('nft: garbage')).toThrow(/no JSON/);
  });

  test('the nft enforcer feeds the rendered script to nft -f - and reports nft errors with its message', () => {
    const calls: { argv: string[]; stdin?: string }[] = [];
    let fail = false;
    const e = new NftDnsEnforcer((argv, stdin) => {
      calls.push({ argv, stdin });
      return fail ? { code: 1, out: '', err: 'Error: Could not process rule: No such file or directory' } : { code: 0, out: '{"nftables":[]}', err: '' };
    });
    e.apply({ mode: 'drop', lan: ['lan0'], listen: ['10.0.1.1:53'] });
    expect(calls[0]!.argv).toEqual(['nft', '-f', '-']);
    expect(calls[0]!.stdin).toContain('table inet dnsseal_enforce {');
    expect(e.counts().dns_dropped.packets).toBe(0);
    fail = true;
    expect(() => e.apply({ mode: 'drop', lan: ['lan0'], listen: ['10.0.1.1:53'] })).toThrow(/enforce_dns: nft could not install table inet dnsseal_enforce: Error: Could not process rule/);
    expect(e.remove()).toEqual([]); // "No such file": nothing was there
  });

  test('the fake enforcer keeps the plan until off or remove', () => {
    const f = new FakeDnsEnforcer();
    f.apply({ mode: 'redirect', lan: ['lan0'], listen: ['10.0.1.1:53'] });
    expect(f.plan?.mode).toBe('redirect');
    expect(f.remove()).toEqual(['nft table inet dnsseal_enforce']);
    expect(f.remove()).toEqual([]);
  });
});
