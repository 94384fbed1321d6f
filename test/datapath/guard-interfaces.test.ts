import { afterAll, describe, expect, test } from 'bun:test';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  DefaultRouteFollower,
  defaultRouteInterfaces,
  followedDefaultRoutes,
  parseIpv4DefaultRoutes,
  parseIpv6DefaultRoutes,
  withGuardInterfaces,
  type RouteFiles,
} from '../../src/datapath/guard-interfaces.ts';
import { createLogger, silentLogger } from '../../src/util/log.ts';

/** /proc/net/route as the kernel prints it (tab-separated, padded lines). */
const V4_HEAD = 'Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT                                                       ';
const v4 = (iface: string, dst: string, flags: string, mask: string, metric = '0') =>
  `${iface}\t${dst}\t0100000A\t${flags}\t0\t0\t${metric}\t${mask}\t0\t0\t0                                                                               `;
const V4_DEFAULT_ETH0 = v4('eth0', '00000000', '0003', '00000000');
const V4_SUBNET_ETH0 = v4('eth0', '000200C0', '0001', '00FFFFFF');

/** /proc/net/ipv6_route: dst dst_len src src_len next_hop metric refcnt use flags device. */
const ZERO = '0'.repeat(32);
const v6 = (dst: string, len: string, flags: string, dev: string) =>
  `${dst} ${len} ${ZERO} 00 fd010000000000000000000000000002 00000400 00000001 00000000 ${flags}       ${dev}`;
const V6_NULL_ENTRY = `${ZERO} 00 ${ZERO} 00 ${ZERO} ffffffff 00000001 00000000 00200200       lo`;

describe('datapath/guard-interfaces', () => {
  test.each([
    ['one default route', [V4_HEAD, V4_DEFAULT_ETH0, V4_SUBNET_ETH0], ['eth0']],
    ['several default routes (metrics)', [V4_HEAD, V4_DEFAULT_ETH0, v4('wwan0', '00000000', '0003', '00000000', '600'), v4('eth0', '00000000', '0003', '00000000', '900')], ['eth0', 'wwan0']],
    ['only non-default routes', [V4_HEAD, V4_SUBNET_ETH0, v4('eth1', '00000000', '0001', '000000FF'), v4('eth2', '0A000000', '0001', '00000000')], []],
    ['a default route that is not up', [V4_HEAD, v4('eth0', '00000000', '0002', '00000000')], []],
    ['an unreachable default route (RTF_REJECT, Iface *)', [V4_HEAD, v4('*', '00000000', '0201', '00000000', '500'), v4('eth1', '00000000', '0201', '00000000')], []],
    ['a default route via a point-to-point link (no gateway)', [V4_HEAD, v4('ppp0', '00000000', '0001', '00000000')], ['ppp0']],
    ['garbage lines', [V4_HEAD, '', 'eth0', 'eth0\t00000000\tzz', v4('eth0', '00000000', 'zzzz', '00000000'), v4('bad/name', '00000000', '0003', '00000000'), v4('waytoolongifname0', '00000000', '0003', '00000000'), '\u0000\u0001', v4('ok0', '00000000', '0003', '00000000')], ['ok0']],
    ['no routes at all', [V4_HEAD], []],
    ['an empty file', [], []],
  ])('lists the IPv4 default-route interfaces when there is %s', (_n, lines, want) => {
    expect(parseIpv4DefaultRoutes(lines.join('\n'))).toEqual(want);
  });

  test.each([
    ['one default route', [v6(ZERO, '00', '00000003', 'eth0'), V6_NULL_ENTRY], ['eth0']],
    ['two default routes on different uplinks', [v6(ZERO, '00', '00000003', 'eth0'), v6(ZERO, '00', '00000003', 'wg0'), v6(ZERO, '00', '00000003', 'eth0')], ['eth0', 'wg0']],
    ['only non-default routes', [v6('fd000000000000000000000000000000', '40', '00000001', 'eth0'), v6(ZERO, '80', '00000001', 'eth1'), v6(ZERO.slice(0, 31) + '1', '00', '00000001', 'eth2')], []],
    ['an unreachable default route (reject flag on lo)', [v6(ZERO, '00', '00200200', 'lo'), V6_NULL_ENTRY], []],
    ['an unreachable default route on a real device', [v6(ZERO, '00', '00000201', 'eth0')], []],
    ['a default route on lo without the reject flag', [v6(ZERO, '00', '00000001', 'lo')], []],
    ['garbage lines', ['', 'not a route', `${ZERO} 00`, v6(ZERO, '00', 'xyz', 'eth0'), v6(ZERO, '00', '00000003', 'a:b'), v6(ZERO, '00', '00000003', 'ok6')], ['ok6']],
  ])('lists the IPv6 default-route interfaces when there is %s', (_n, lines, want) => {
    expect(parseIpv6DefaultRoutes(lines.join('\n'))).toEqual(want);
  });

  const dir = mkdtempSync(join(tmpdir(), 'dnsseal-routes-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const files = (name: string, v4Lines: string[] | undefined, v6Lines: string[] | undefined): RouteFiles => {
    const f = { v4: join(dir, `${name}.route`), v6: join(dir, `${name}.ipv6_route`) };
    if (v4Lines) writeFileSync(f.v4, v4Lines.join('\n') + '\n');
    if (v6Lines) writeFileSync(f.v6, v6Lines.join('\n') + '\n');
    return f;
  };

  test.each([
    ['one uplink for both families', files('both', [V4_HEAD, V4_DEFAULT_ETH0], [v6(ZERO, '00', '00000003', 'eth0')]), ['eth0']],
    ['separate v4 and v6 uplinks', files('split', [V4_HEAD, v4('wan0', '00000000', '0003', '00000000')], [v6(ZERO, '00', '00000003', 'wan6')]), ['wan0', 'wan6']],
    ['no IPv6 in the kernel (no ipv6_route file)', files('nov6', [V4_HEAD, V4_DEFAULT_ETH0], undefined), ['eth0']],
    ['no default route', files('none', [V4_HEAD, V4_SUBNET_ETH0], [V6_NULL_ENTRY]), []],
  ])('reads the default-route interfaces from the route files when there is %s', (_n, f, want) => {
    expect(defaultRouteInterfaces(f)).toEqual(want);
  });

  test('refuses a route file that exists but cannot be read with a datapath error', () => {
    expect(() => defaultRouteInterfaces({ v4: dir, v6: join(dir, 'absent') })).toThrow(/datapath: cannot read the default routes/);
  });

  test('keeps the configured wan interfaces when the config names some', () => {
    const cfg = { wan: ['ppp0'] };
    expect(withGuardInterfaces(cfg, silentLogger, files('cfg', [V4_HEAD, V4_DEFAULT_ETH0], []))).toBe(cfg);
  });

  test('puts the guard on the default-route interfaces when the config names no wan', () => {
    expect(withGuardInterfaces({ wan: [] as string[], mode: 'host' }, silentLogger, files('derive', [V4_HEAD, V4_DEFAULT_ETH0], [])).wan).toEqual(['eth0']);
  });

  test('follows the default routes when the config names no wan', () => {
    const f = files('follow', [V4_HEAD, V4_DEFAULT_ETH0], []);
    const follow = followedDefaultRoutes({ wan: [] }, f);
    expect(follow?.()).toEqual(['eth0']);
    writeFileSync(f.v4, [V4_HEAD, v4('ppp0', '00000000', '0001', '00000000')].join('\n'));
    expect(follow?.()).toEqual(['ppp0']);
  });

  test('follows nothing when the config names wan interfaces', () => {
    expect(followedDefaultRoutes({ wan: ['eth0'] }, files('nofollow', [V4_HEAD, V4_DEFAULT_ETH0], []))).toBeUndefined();
  });

  test('warns and leaves wan empty when the route files cannot be read', () => {
    const lines: string[] = [];
    const log = createLogger({ write: (l) => lines.push(l) });
    expect(withGuardInterfaces({ wan: [] as string[] }, log, { v4: dir, v6: dir }).wan).toEqual([]);
    expect(lines.join('\n')).toContain('reading the default routes failed');
  });

  test("reads this machine's default routes from /proc", () => {
    const devs = defaultRouteInterfaces();
    expect(Array.isArray(devs)).toBe(true);
    for (const d of devs) expect(d).toMatch(/^[^\s/:]{1,15}$/);
  });

  test('the follower adds each new default-route interface after the configured ones and never removes one', () => {
    let routes = ['eth0'];
    const f = new DefaultRouteFollower(['wan0'], () => routes, silentLogger);
    expect(f.names()).toEqual(['wan0', 'eth0']);
    routes = ['ppp0'];
    expect(f.names()).toEqual(['wan0', 'eth0', 'ppp0']);
    routes = [];
    expect(f.names()).toEqual(['wan0', 'eth0', 'ppp0']);
  });

  test('the follower announces an interface once when the guard is attached there', () => {
    const lines: string[] = [];
    const f = new DefaultRouteFollower([], () => ['eth1'], createLogger({ write: (l) => lines.push(l) }));
    f.attached('eth1'); // not followed yet: nothing to announce
    f.names();
    f.attached('eth1');
    f.attached('eth1');
    expect(lines.filter((l) => l.includes('default route now via eth1; leak guard attached'))).toHaveLength(1);
  });

  test('the follower keeps what it has and warns once when the routes cannot be read', () => {
    const lines: string[] = [];
    let fail = false;
    const f = new DefaultRouteFollower([], () => {
      if (fail) throw new Error('EACCES');
      return ['eth0'];
    }, createLogger({ write: (l) => lines.push(l) }));
    f.names();
    fail = true;
    expect(f.names()).toEqual(['eth0']);
    expect(f.names()).toEqual(['eth0']);
    expect(lines.filter((l) => l.includes('cannot read the default routes'))).toHaveLength(1);
  });
});
