import { describe, expect, test } from 'bun:test';
import { defaultRouteInterfaces, withGuardInterfaces, type RouteReader } from '../../src/datapath/guard-interfaces.ts';
import { silentLogger } from '../../src/util/log.ts';

const routes = (v4: string, v6: string): RouteReader => (f) => (f === 4 ? v4 : v6);

describe('datapath/guard-interfaces', () => {
  test.each([
    ['one uplink for both families', routes('[{"dst":"default","gateway":"192.0.2.1","dev":"eth0"}]', '[{"dst":"default","dev":"eth0"}]'), ['eth0']],
    ['separate v4 and v6 uplinks', routes('[{"dst":"default","dev":"wan0"}]', '[{"dst":"default","dev":"wan6"}]'), ['wan0', 'wan6']],
    ['two v4 default routes (multipath or metrics)', routes('[{"dev":"a"},{"dev":"b"}]', ''), ['a', 'b']],
    ['no default route', routes('[]', ''), []],
  ])('lists the default-route interfaces when there is %s', (_n, read, want) => {
    expect(defaultRouteInterfaces(read)).toEqual(want);
  });

  test('refuses unreadable route output with a datapath error', () => {
    expect(() => defaultRouteInterfaces(routes('{not json', ''))).toThrow(/datapath: cannot read the default routes/);
  });

  test('keeps the configured wan interfaces when the config names some', () => {
    const cfg = { wan: ['ppp0'] };
    expect(withGuardInterfaces(cfg, silentLogger, routes('[{"dev":"eth0"}]', ''))).toBe(cfg);
  });

  test('puts the guard on the default-route interfaces when the config names no wan', () => {
    expect(withGuardInterfaces({ wan: [] as string[], mode: 'host' }, silentLogger, routes('[{"dev":"eth0"}]', '')).wan).toEqual(['eth0']);
  });

  test('reads this machine\'s default routes with ip -j', () => {
    const devs = defaultRouteInterfaces();
    expect(Array.isArray(devs)).toBe(true);
    for (const d of devs) expect(d).toMatch(/^[\w.@-]+$/);
  });
});
