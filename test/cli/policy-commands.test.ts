/** `explain` and `check` for the two ways issue 12 answers LAN names: forwarding rules and local records. */
import { describe, expect, test } from 'bun:test';
import { cli } from './fixtures.ts';

const CONF = `upstreams:
  default: 192.0.2.53
  lan: 192.168.1.1
channels:
  hub: {kind: tunnel, gateway: 192.0.2.1}
hosts:
  router.lan: [192.168.1.1, "fd00::1"]
  nas.lan: 192.168.1.10
tables:
  default:
    - {match: "*.lan", upstream: lan}
    - {match: nas.lan, channel: hub}
`;
const files = { 'c.yaml': CONF };

describe('cli/policy-commands explain', () => {
  test('says a name only a forwarding rule matches is forwarded to its upstream, not protected', async () => {
    const h = await cli(['explain', 'printer.lan', '--config', 'c.yaml'], { files });
    expect(h.code).toBe(0);
    expect(h.out).toContain('rule:     #0 *.lan (suffix, forwarding) from c.yaml:11');
    expect(h.out).toContain('channel:  none: forwarded to upstream lan, not protected');
    expect(h.out).toContain('upstream: lan (192.168.1.1:53)\n');
  });

  test('names the protecting rule and the forwarding rule that picks the upstream when both match', async () => {
    const h = await cli(['explain', 'www.nas.lan', '--upstream', 'default=192.0.2.53', '--upstream', 'lan=192.168.1.1', '--channel', 'hub=tunnel:192.0.2.1', '--forward', '*.lan=lan', '--protect', '*.nas.lan=hub']);
    expect(h.out).toContain('rule:     #1 *.nas.lan (suffix) from --protect');
    expect(h.out).toContain('channel:  hub: tunnel via 192.0.2.1');
    expect(h.out).toContain('upstream: lan (192.168.1.1:53), chosen by rule #0 *.lan (suffix, forwarding) from --forward');
  });

  test('prints the forwarding rule and upstreamRule in the JSON', async () => {
    const h = await cli(['explain', 'www.nas.lan', '--json', '--upstream', 'default=192.0.2.53', '--upstream', 'lan=192.168.1.1', '--channel', 'hub=tunnel:192.0.2.1', '--forward', '*.lan=lan', '--protect', '*.nas.lan=hub']);
    const e = JSON.parse(h.out);
    expect(e).toMatchObject({ rule: { pattern: '*.nas.lan', index: 1 }, channel: { name: 'hub' }, upstream: 'lan', upstreamRule: { pattern: '*.lan', index: 0, forwarding: true, source: '--forward' } });
  });

  test('says a local name is answered by dnsseal with its records', async () => {
    const h = await cli(['explain', 'Router.LAN', '--config', 'c.yaml'], { files });
    expect(h.out).toContain('channel:  none\n');
    expect(h.out).toContain('local:    A 192.168.1.1, AAAA fd00::1 (TTL 60 s; other types: NODATA)');
    expect(h.out).toContain('upstream: none: a local name, answered by dnsseal\n');
  });

  test('says a protected local name is registered before it is released', async () => {
    const h = await cli(['explain', 'nas.lan', '--config', 'c.yaml', '--json'], { files });
    const e = JSON.parse(h.out);
    expect(e).toMatchObject({ rule: { pattern: 'nas.lan' }, channel: { name: 'hub' }, local: { records: [{ type: 'A', data: '192.168.1.10' }], ttl: 60 } });
    const text = (await cli(['explain', 'nas.lan', '--config', 'c.yaml'], { files })).out;
    expect(text).toContain('upstream: none: a local name, answered by dnsseal (registered before it is released)');
  });

  test('explains the reverse name of a local address', async () => {
    const h = await cli(['explain', '10.1.168.192.in-addr.arpa', '--config', 'c.yaml'], { files });
    expect(h.out).toContain('local:    PTR nas.lan');
  });

  test.each([
    ['', 'needs a domain name, not ""'],
    ['.', 'needs a domain name, not "."'],
    ['bad..lan', '"bad..lan" is not a domain name: "bad..lan" has an empty label'],
    ['a b.lan', '"a b.lan" is not a domain name'],
    [`${'x'.repeat(64)}.lan`, 'is longer than 63 characters'],
    ['*.lan', '"*.lan" is a pattern; explain takes a name a client would ask for, e.g. "www.lan"'],
    ['sato.*', '"sato.*" is a pattern; explain takes a name a client would ask for, e.g. "sato.example"'],
  ])('refuses %p with exit 1 instead of saying it stays in clear when it is not a name', async (name, message) => {
    const h = await cli(['explain', name, '--config', 'c.yaml'], { files });
    expect(h.code).toBe(1);
    expect(h.out).toBe('');
    expect(h.err).toStartWith('dnsseal: explain: ');
    expect(h.err).toContain(message);
  });

  test.each([
    ['10.9.1.1', 'static:   10.9.0.0/16 through channel hub (tunnel): always protected, whatever DNS says'],
    ['10.8.1.1', 'static:   none: not always protected; traffic to it is protected while a protected name\'s answer holds it ("dnsseal list --address 10.8.1.1" asks the running daemon)'],
    ['2001:DB8::1', 'static:   2001:db8::/32 through channel hub (tunnel): always protected, whatever DNS says'],
  ])('explains address %p by the static entries, not as a name no rule matches', async (address, line) => {
    const h = await cli(['explain', address, '--config', 'c.yaml', '--static', '10.9.0.0/16=hub', '--static', '2001:db8::/32=hub'], { files });
    expect(h.code).toBe(0);
    expect(h.out).toContain(`${line}\n`);
    expect(h.out).not.toContain('traffic stays in clear');
  });

  test('gives the static entry of an address as JSON', async () => {
    const h = await cli(['explain', '10.9.1.1', '--json', '--config', 'c.yaml', '--static', '10.9.0.0/16=hub'], { files });
    expect(JSON.parse(h.out)).toMatchObject({ address: '10.9.1.1', client: null, table: 'default', static: { cidr: '10.9.0.0/16', channel: { name: 'hub', kind: 'tunnel' } } });
  });

  test.each(['nas.lan.', 'NAS.lan', '_sip._tcp.nas.lan', 'bücher.lan'])('takes %p as a name', async (name) => {
    const h = await cli(['explain', name, '--config', 'c.yaml'], { files });
    expect(h.code).toBe(0);
  });
});

describe('cli/policy-commands check', () => {
  test('counts forwarding rules and local names in the summary when there are some', async () => {
    const h = await cli(['check', '--config', 'c.yaml'], { files });
    expect(h.out).toContain('1 table with 2 rules, 0 client ranges, 0 static entries, 1 forwarding rule, 2 local names');
    const j = JSON.parse((await cli(['check', '--config', 'c.yaml', '--json'], { files })).out);
    expect(j.summary).toMatchObject({ rules: 2, forwardingRules: 1, localNames: 2 });
  });
});
