import { describe, expect, test } from 'bun:test';
import { AcceptPolicy } from '../../src/tls/accept-policy.ts';

const policy = AcceptPolicy.compile([
  { identity: 'router.corp.test', allow: [{ cidrs: ['198.51.100.0/24', '2001:db8::/32'], ports: [80, '8000-8099'] }, { names: ['*.corp.example'], ports: [443] }] },
  { identity: '*', allow: [{ cidrs: ['203.0.113.5/32'], ports: [22] }] },
]);
const resolve = async (name: string) => (name === 'www.corp.example' ? ['192.0.2.80'] : []);

describe('tls/accept-policy', () => {
  test.each([
    [['router.corp.test'], '198.51.100.9', 80, undefined, true],
    [['router.corp.test'], '198.51.100.9', 8050, undefined, true],
    [['router.corp.test'], '198.51.100.9', 443, undefined, false],
    [['router.corp.test'], '2001:db8::9', 80, undefined, true],
    [['router.corp.test'], '192.0.2.80', 443, 'www.corp.example', true],
    [['router.corp.test'], '192.0.2.81', 443, 'www.corp.example', false], // the name does not have that address
    [['router.corp.test'], '192.0.2.80', 443, undefined, false],
    [['router.corp.test'], '192.0.2.80', 443, 'www.other.example', false],
    [['x.corp.test', 'ROUTER.corp.test'], '198.51.100.1', 80, undefined, true],
    [['someone.else'], '203.0.113.5', 22, undefined, true],
    [['someone.else'], '198.51.100.9', 80, undefined, false],
  ])('client %j to %s port %d (name %s) allowed: %s', async (names, addr, port, name, ok) => {
    const c = policy.client(names)!;
    expect((await c.check({ addr, port }, name, resolve)).ok).toBe(ok);
  });

  test('a wildcard client certificate name does not select a client entry', () => {
    const strict = AcceptPolicy.compile([{ identity: 'router.corp.test', allow: [{ cidrs: ['0.0.0.0/0'] }] }]);
    expect(strict.client(['*.corp.test'])).toBeNull();
    expect(strict.client(['router.corp.test'])).not.toBeNull();
  });

  test.each([
    [[], 'at least one client'],
    [[{ identity: 'a.test', allow: [{ ports: [80] }] }], 'needs cidrs or names'],
    [[{ identity: 'a.test', allow: [{ cidrs: ['10.0.0.1/8'] }] }], 'host bits'],
    [[{ identity: 'a.test', allow: [{ cidrs: ['10.0.0.0/8'], ports: ['90-80'] }] }], 'not a port'],
    [[{ identity: 'a.test', allow: [] }], 'at least one entry'],
    [[{ identity: '', allow: [{ cidrs: ['10.0.0.0/8'] }] }], 'identity'],
  ])('config %j is refused (%s)', (input, msg) => {
    expect(() => AcceptPolicy.compile(input as never)).toThrow(msg);
  });
});
