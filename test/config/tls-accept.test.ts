/** The `tls_accept:` section: defaults, certificates from the global settings, allow-lists checked at their lines. */
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { loadConfigText, type LoadDeps } from '../../src/config/load.ts';
import { DEFAULT_ACCEPT_LIMITS } from '../../src/tls/acceptor.ts';
import { errorOf } from './fixtures.ts';
import { TestPki } from '../tls/pki.ts';

let pki: TestPki;
const files: Record<string, string> = {};

beforeAll(() => {
  pki = new TestPki();
  pki.leaf('hub', ['DNS:hub.corp.test']);
  for (const f of ['ca.crt', 'hub.crt', 'hub.key']) files[`/pki/${f}`] = pki.text(f);
});
afterAll(() => pki.cleanup());

const deps: LoadDeps = {
  readFile: (p) => {
    const t = files[p];
    if (t === undefined) throw new Error(`ENOENT: no such file or directory, open '${p}'`);
    return t;
  },
  resolvTexts: () => ['nameserver 192.0.2.53\n'],
};

const GLOBAL = 'tls_cert: /pki/hub.crt\ntls_key: /pki/hub.key\ntls_ca: /pki/ca.crt\n';
const CLIENTS = '  clients:\n    - identity: router.corp.test\n      allow:\n        - cidrs: [198.51.100.0/24]\n          ports: [80, 8000-8099]\n';

const load = (text: string) => loadConfigText(text, 'c.yaml', new Map(), deps);

describe('config tls_accept', () => {
  test('takes the global certificate and the default listen address and limits when the section gives only clients', () => {
    const c = load(`${GLOBAL}tls_accept:\n${CLIENTS}`);
    expect(c.tlsAccept).toEqual({
      listen: ['0.0.0.0:9853'],
      credentials: { certPem: files['/pki/hub.crt']!, keyPem: files['/pki/hub.key']!, caPem: files['/pki/ca.crt']!, names: ['hub.corp.test'] },
      clients: [{ identity: 'router.corp.test', allow: [{ cidrs: ['198.51.100.0/24'], ports: [80, '8000-8099'] }] }],
      limits: DEFAULT_ACCEPT_LIMITS,
    });
  });

  test('reads its own listen addresses, certificate, identity and limits when given', () => {
    const c = load(
      'tls_accept:\n  listen: ["192.0.2.1:9853", "[2001:db8::1]:443"]\n  cert: /pki/hub.crt\n  key: /pki/hub.key\n  ca: /pki/ca.crt\n  local_identity: hub.corp.test\n' +
        '  handshake_timeout: 2000\n  max_per_client: 16\n' +
        CLIENTS,
    );
    expect(c.tlsAccept!.listen).toEqual(['192.0.2.1:9853', '[2001:db8::1]:443']);
    expect(c.tlsAccept!.limits).toEqual({ ...DEFAULT_ACCEPT_LIMITS, handshakeTimeoutMs: 2000, maxPerClient: 16 });
  });

  test('is absent when the section is not given', () => {
    expect(load(GLOBAL).tlsAccept).toBeUndefined();
  });

  test.each([
    ['no clients', `${GLOBAL}tls_accept:\n  listen: ["0.0.0.0:9853"]\n`, 'c.yaml:4: needs "clients:": who may connect, and where to'],
    ['an entry with ports only', `${GLOBAL}tls_accept:\n  clients:\n    - identity: "*"\n      allow:\n        - ports: [443]\n`, 'c.yaml:8: an allow entry needs cidrs or names'],
    ['a bad CIDR', `${GLOBAL}tls_accept:\n  clients:\n    - identity: "*"\n      allow:\n        - cidrs: [198.51.100.0/33]\n`, 'c.yaml:8: "198.51.100.0/33": prefix length must be 0..32'],
    ['a bad port range', `${GLOBAL}tls_accept:\n  clients:\n    - identity: a.test\n      allow:\n        - cidrs: [10.0.0.0/8]\n          ports: [9000-80]\n`, 'c.yaml:8: port "9000-80" is not a port (1-65535) or range (LOW-HIGH)'],
    ['a misspelt allow key', `${GLOBAL}tls_accept:\n  clients:\n    - identity: a.test\n      allow:\n        - cidr: [10.0.0.0/8]\n`, 'c.yaml:8: unknown key "cidr" in tls_accept.clients.0.allow.0; did you mean "cidrs"?'],
    ['a client without identity', `${GLOBAL}tls_accept:\n  clients:\n    - allow:\n        - cidrs: [10.0.0.0/8]\n`, 'c.yaml:6: identity must be a non-empty string'],
    ['a limit out of range', `${GLOBAL}tls_accept:\n  max_pending: 0\n${CLIENTS}`, 'c.yaml:5: must be a whole number of connections between 1 and 1000000, not 0'],
    ['a listen address without port', `${GLOBAL}tls_accept:\n  listen: ["192.0.2.1"]\n${CLIENTS}`, 'c.yaml:5: listen: "192.0.2.1" needs a port'],
    ['no certificate', `tls_accept:\n${CLIENTS}`, 'c.yaml:1: tls_accept needs "cert: PATH" (our certificate)'],
    ['a local identity the certificate lacks', `${GLOBAL}tls_accept:\n  local_identity: other.corp.test\n${CLIENTS}`, 'c.yaml:5: tls_accept: certificate /pki/hub.crt does not hold local_identity other.corp.test'],
  ])('refuses %s at its line', (_what, text, message) => {
    expect(errorOf(() => load(text))).toStartWith(message);
  });
});
