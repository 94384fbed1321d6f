/**
 * Local records in the config (issue 12): `hosts:`, `hosts_file:` (/etc/hosts format),
 * `--host`, `--hosts-file`, `hosts_ttl`; each refusal at its line.
 */
import { describe, expect, test } from 'bun:test';
import { checkConfig, problemText, type Problem } from '../../src/config/check.ts';
import { loadConfig } from '../../src/config/load.ts';
import { deps, flags } from './fixtures.ts';

const HEAD = 'upstreams:\n  default: 192.0.2.53\n';

function check(text: string, extra: Map<string, string[]> = new Map(), files: Record<string, string> = {}) {
  return checkConfig(new Map([['config', ['etc/c.yaml']], ...extra]), deps({ 'etc/c.yaml': HEAD + text, ...files }));
}

const texts = (ps: Problem[]) => ps.map(problemText);

describe('config/hosts', () => {
  test('reads names and addresses, canonical, in the order given when hosts and hosts_file are set', () => {
    const r = check('hosts:\n  Router.LAN.: 192.168.1.1\n  nas.lan:\n    - 192.168.1.10\n    - "FD00:0::10"\nhosts_file: hosts\nhosts_ttl: 300\n', new Map(), {
      'etc/hosts': '# the LAN\n192.168.1.1   gw.lan router   # two names\n\n::1 localhost\n',
    });
    expect(r.errors).toEqual([]);
    expect(r.config!.hosts).toEqual([
      { name: 'router.lan', addrs: ['192.168.1.1'] },
      { name: 'nas.lan', addrs: ['192.168.1.10', 'fd00::10'] },
      { name: 'gw.lan', addrs: ['192.168.1.1'] },
      { name: 'router', addrs: ['192.168.1.1'] },
      { name: 'localhost', addrs: ['::1'] },
    ]);
    expect([r.config!.hostsFile, r.config!.hostsTtlS]).toEqual(['etc/hosts', 300]);
  });

  test('has no local records and a TTL of 60 s when nothing is set', () => {
    const r = check('');
    expect([r.config!.hosts, r.config!.hostsFile, r.config!.hostsTtlS]).toEqual([[], undefined, 60]);
  });

  test('refuses bad names and addresses of hosts at their lines, all in one pass', () => {
    const r = check('hosts:\n  router.lan: 192.168.1.300\n  "*.lan": 192.168.1.2\n  nas.lan:\n    - 192.168.1.10\n    - fe80::1%eth0\n  empty.lan: []\n  bad..lan: 10.0.0.1\n');
    expect(texts(r.errors)).toEqual([
      'etc/c.yaml:4: hosts.router.lan: local name "router.lan": "192.168.1.300" is not an IP address',
      'etc/c.yaml:5: hosts.*.lan: local name "*.lan" is a pattern; a local name is one name (write each name)',
      'etc/c.yaml:8: hosts.nas.lan[1]: local name "nas.lan": "fe80::1%eth0" is not an IP address',
      'etc/c.yaml:9: hosts.empty.lan: local name "empty.lan" needs at least one address',
      'etc/c.yaml:10: hosts.bad..lan: local name "bad..lan" has an empty label',
    ]);
  });

  test('refuses bad lines of the hosts file at their lines', () => {
    const r = check('hosts_file: hosts\n', new Map(), { 'etc/hosts': '192.168.1.1 ok.lan\n192.168.1.x broken.lan\n10.0.0.1\n10.0.0.2 a_b.lan -bad.lan\n' });
    expect(texts(r.errors)).toEqual([
      'etc/hosts:2: "192.168.1.x" is not an IP address',
      'etc/hosts:3: 10.0.0.1 has no name (a line is ADDR NAME [ALIAS…])',
      'etc/hosts:4: label "-bad" may only hold letters, digits, "-" and "_" (and not start or end with "-")',
    ]);
  });

  test('refuses a hosts file that cannot be read at the hosts_file line', () => {
    const r = check('hosts_file: /etc/dnsseal/missing\n');
    expect(texts(r.errors)).toEqual(["etc/c.yaml:3: hosts_file: cannot read hosts file /etc/dnsseal/missing: no such file or directory, open '/etc/dnsseal/missing'"]);
  });

  test('refuses a hosts_ttl out of range at its line', () => {
    expect(texts(check('hosts_ttl: 90000\n').errors)).toEqual(['etc/c.yaml:3: hosts_ttl: must be a whole number of seconds between 0 and 86400, not 90000']);
  });

  test('replaces a name\'s addresses with the first --host for it and adds the next ones', () => {
    const c = loadConfig(
      flags(['config', 'c.yaml'], ['host', 'router.lan=10.0.0.1'], ['host', 'router.lan=fd00::1'], ['host', 'new.lan=10.0.0.7,10.0.0.8'], ['hosts-file', 'h2']),
      deps({ 'c.yaml': `${HEAD}hosts:\n  router.lan: 192.168.1.1\n  nas.lan: 192.168.1.10\nhosts_file: h1\n`, h1: '10.1.1.1 one.lan\n', h2: '10.2.2.2 two.lan\n' }),
    );
    expect(c.hosts).toEqual([
      { name: 'router.lan', addrs: ['10.0.0.1', 'fd00::1'] },
      { name: 'nas.lan', addrs: ['192.168.1.10'] },
      { name: 'new.lan', addrs: ['10.0.0.7', '10.0.0.8'] },
      { name: 'two.lan', addrs: ['10.2.2.2'] },
    ]);
    expect(c.hostsFile).toBe('h2');
  });

  test.each([
    ['router.lan', /"router\.lan" is not NAME=ADDR/],
    ['router.lan=10.0.0.999', /"10\.0\.0\.999" is not an IP address/],
    ['*.lan=10.0.0.1', /is a pattern/],
  ])('refuses --host %p', (text, why) => {
    expect(() => loadConfig(flags(['config', 'none'], ['upstream', '192.0.2.53'], ['host', text]), deps())).toThrow(why);
  });
});
