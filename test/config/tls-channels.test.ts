/**
 * `protocol: tls` channels, per-channel `local_identity` (TLS and IPsec), the global TLS
 * settings and the certificate checks at load (each problem at the line that named the file),
 * in the file and in the `--channel` flag syntax.
 */
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { loadConfigText, type LoadDeps } from '../../src/config/load.ts';
import { peerConn, tunnelConn } from '../../src/ipsec/conn-config.ts';
import { decodeMessage, encodeMessage } from '../../src/ipsec/vici-codec.ts';
import { DEFAULT_TLS_PORT } from '../../src/policy/channel.ts';
import { TestPki } from '../tls/pki.ts';
import { errorOf, flags } from './fixtures.ts';

let pki: TestPki;
let files: Record<string, string>;

beforeAll(() => {
  pki = new TestPki();
  pki.leaf('router', ['DNS:router.corp.test', 'DNS:router-b.corp.test']);
  pki.leaf('hub', ['DNS:hub.corp.test']);
  files = {};
  for (const f of ['ca.crt', 'otherca.crt', 'router.crt', 'router.key', 'hub.crt', 'hub.key']) files[`/pki/${f}`] = pki.text(f);
  files['/pki/encrypted.key'] = '-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIGbMFcGCSqGSIb3DQEFDTBKMCkGCSqGSIb3DQEFDDAcBAhN\n-----END ENCRYPTED PRIVATE KEY-----\n';
});
afterAll(() => pki.cleanup());

function deps(nowMs?: number): LoadDeps {
  return {
    readFile: (p) => {
      const t = files[p];
      if (t === undefined) throw new Error(`ENOENT: no such file or directory, open '${p}'`);
      return t;
    },
    resolvTexts: () => ['nameserver 192.0.2.53\n'],
    ...(nowMs !== undefined ? { nowMs: () => nowMs } : {}),
  };
}

const GLOBAL = 'tls_cert: /pki/router.crt\ntls_key: /pki/router.key\ntls_ca: /pki/ca.crt\n';

function load(text: string, argv: Array<[string, string]> = [], nowMs?: number) {
  return loadConfigText(text, 'c.yaml', flags(...argv), deps(nowMs));
}

describe('config tls channels', () => {
  test('reads a tls peer and a tls tunnel from the file with their defaults when only the kind is given', () => {
    const c = load(`${GLOBAL}channels:\n  partner:\n    protocol: tls\n    kind: peer\n  hub:\n    protocol: tls\n    kind: tunnel\n    gateway: 192.0.2.1\n    identity: hub.corp.test\n    tls_port: 9443\n`);
    expect(c.channels).toEqual([
      { name: 'partner', id: 1, mark: c.channels[0]!.mark, protocol: 'tls', kind: 'peer', identity: '%name', esp: '', tlsPort: DEFAULT_TLS_PORT },
      { name: 'hub', id: 2, mark: c.channels[1]!.mark, protocol: 'tls', kind: 'tunnel', gateway: '192.0.2.1', identity: 'hub.corp.test', esp: '', tlsPort: 9443 },
    ]);
    expect(Object.keys(c.tlsCredentials!)).toEqual(['partner', 'hub']);
    expect(c.tlsCredentials!.partner!.names).toEqual(['router.corp.test', 'router-b.corp.test']);
    expect(c.tlsCredentials!.partner!.certPem).toBe(files['/pki/router.crt']!);
  });

  test('reads the same channels from --channel flags as from the file when written as tls-peer and tls-tunnel', () => {
    const fromFile = load(
      'channels:\n  partner:\n    protocol: tls\n    kind: peer\n    identity: peer.partner.test\n    tls_port: 9000\n    local_identity: router-b.corp.test\n    cert: /pki/router.crt\n    key: /pki/router.key\n    ca: /pki/ca.crt\n' +
        `  hub:\n    protocol: tls\n    kind: tunnel\n    gateway: hub.corp.test\n${GLOBAL}`,
    );
    const fromFlags = load('', [
      ['channel', 'partner=tls-peer,identity=peer.partner.test,tls_port=9000,local_identity=router-b.corp.test,cert=/pki/router.crt,key=/pki/router.key,ca=/pki/ca.crt'],
      ['channel', 'hub=tls-tunnel:hub.corp.test'],
      ['tls-cert', '/pki/router.crt'],
      ['tls-key', '/pki/router.key'],
      ['tls-ca', '/pki/ca.crt'],
    ]);
    expect(fromFlags.channels).toEqual(fromFile.channels);
    expect(fromFile.channels[0]).toMatchObject({ protocol: 'tls', tlsPort: 9000, localIdentity: 'router-b.corp.test', cert: '/pki/router.crt' });
    expect(fromFile.channels[1]).toMatchObject({ protocol: 'tls', kind: 'tunnel', gateway: 'hub.corp.test', identity: 'hub.corp.test', tlsPort: DEFAULT_TLS_PORT });
  });

  test('keeps IPsec the default protocol when protocol is not given', () => {
    const c = load('channels:\n  hub:\n    kind: tunnel\n    gateway: 192.0.2.1\n');
    expect(c.channels[0]).toMatchObject({ protocol: 'ipsec', esp: 'aes256gcm16' });
    expect(c.tlsCredentials).toBeUndefined();
  });

  test.each([
    ['esp on a tls channel', 'channels:\n  p:\n    protocol: tls\n    kind: peer\n    esp: aes256gcm16\n', 'c.yaml:5: channel "p": esp applies to protocol ipsec only (a tls channel always uses TLS 1.3, whose suites are all AEAD); remove it'],
    ['negotiate on a tls channel', 'channels:\n  p:\n    protocol: tls\n    kind: peer\n    negotiate: on-traffic\n', 'c.yaml:5: channel "p": negotiate applies to protocol ipsec only'],
    ['negotiate_timeout on a tls channel', 'channels:\n  p:\n    protocol: tls\n    kind: peer\n    negotiate_timeout: 500\n', 'c.yaml:5: channel "p": negotiate_timeout applies to protocol ipsec only'],
    ['tls_port on an IPsec channel', 'channels:\n  p:\n    kind: peer\n    tls_port: 9853\n', 'c.yaml:4: channel "p": tls_port applies to protocol tls only'],
    ['a certificate on an IPsec channel', 'channels:\n  p:\n    kind: peer\n    cert: /pki/router.crt\n', 'c.yaml:4: channel "p": cert applies to protocol tls only (an IPsec channel\'s certificate and key are charon\'s (load them with swanctl); local_identity picks which one)'],
    ['an unknown protocol', 'channels:\n  p:\n    protocol: wireguard\n    kind: peer\n', 'c.yaml:3: channel "p": protocol must be "ipsec" (IKE and ESP, the default) or "tls" (TCP in mutual TLS 1.3), not "wireguard"'],
    ['a tls tunnel through an address without identity', 'channels:\n  h:\n    protocol: tls\n    kind: tunnel\n    gateway: 192.0.2.1\n', 'c.yaml:5: channel "h": a tls channel\'s identity is a DNS name the peer\'s certificate holds as subjectAltName, and "192.0.2.1" is not one: give "identity: NAME"'],
    ['a wildcard identity', 'channels:\n  p:\n    protocol: tls\n    kind: peer\n    identity: "*.partner.test"\n', 'c.yaml:5: channel "p": a tls channel\'s identity is a DNS name'],
    ['an address as tls local identity', 'channels:\n  p:\n    protocol: tls\n    kind: peer\n    local_identity: 192.0.2.7\n', 'c.yaml:5: channel "p": local_identity "192.0.2.7" of a tls channel must be a DNS name'],
    ['tls_port 0', 'channels:\n  p:\n    protocol: tls\n    kind: peer\n    tls_port: 0\n', 'c.yaml:5: channel "p": tls_port must be a TCP port (1-65535), not 0'],
  ])('refuses %s naming the line', (_what, text, message) => {
    expect(errorOf(() => load(`${text}${GLOBAL}`))).toStartWith(message);
  });

  test.each([
    ['p=tls-peer,esp=aes256gcm16', '--channel: channel "p": esp applies to protocol ipsec only'],
    ['p=peer,tls_port=9853', '--channel: channel "p": tls_port applies to protocol tls only (it is the TLS port of a protocol tls channel); make it a tls channel (protocol: tls in the file, the tls-peer or tls-tunnel kind in --channel) or remove it'],
    ['p=tls-tunnel:192.0.2.1', '--channel: channel "p": a tls channel\'s identity is a DNS name'],
    ['p=tls-gateway', '--channel: "p=tls-gateway": expected NAME=tunnel:GATEWAY'],
  ])('refuses --channel %s naming the flag', (flag, message) => {
    expect(errorOf(() => load(GLOBAL, [['channel', flag]]))).toStartWith(message);
  });
});

describe('config tls certificates at load', () => {
  const peer = (extra: string) => `channels:\n  partner:\n    protocol: tls\n    kind: peer\n${extra}`;

  test.each([
    ['a certificate file that does not exist', `${GLOBAL}${peer('    cert: /pki/nope.crt\n')}`, 'c.yaml:8: channel "partner": cannot read certificate /pki/nope.crt: ENOENT'],
    ['a global key that does not exist', `tls_cert: /pki/router.crt\ntls_key: /pki/nope.key\ntls_ca: /pki/ca.crt\n${peer('')}`, 'c.yaml:2: channel "partner": cannot read key /pki/nope.key'],
    ['an encrypted key', `${GLOBAL}${peer('    key: /pki/encrypted.key\n')}`, 'c.yaml:8: channel "partner": key /pki/encrypted.key is not an unencrypted PEM private key'],
    ['the key of another certificate', `${GLOBAL}${peer('    key: /pki/hub.key\n')}`, 'c.yaml:8: channel "partner": key /pki/hub.key does not belong to certificate /pki/router.crt'],
    ['a local identity the certificate does not hold', `${GLOBAL}${peer('    local_identity: hub.corp.test\n')}`, 'c.yaml:8: channel "partner": certificate /pki/router.crt does not hold local_identity hub.corp.test as a DNS SAN (it holds router.corp.test, router-b.corp.test)'],
    ['a global local identity the certificate does not hold', `${GLOBAL}tls_local_identity: hub.corp.test\n${peer('')}`, 'c.yaml:4: channel "partner": certificate /pki/router.crt does not hold local_identity hub.corp.test'],
    ['a leaf as CA', `${GLOBAL}${peer('    ca: /pki/hub.crt\n')}`, 'c.yaml:8: channel "partner": /pki/hub.crt is not a CA certificate'],
    ['no certificate anywhere', peer(''), 'c.yaml:2: channel "partner" (protocol tls) needs "cert: PATH" (our certificate), "key: PATH" (our private key), "ca: PATH" (the CA the other side must chain to) here or tls_cert, tls_key, tls_ca globally'],
  ])('refuses %s at the line that named it', (_what, text, message) => {
    expect(errorOf(() => load(text))).toStartWith(message);
  });

  test.each([
    [[['channel', 'p=tls-peer']], '--channel: channel "p" (protocol tls) needs cert=PATH (our certificate), key=PATH (our private key), ca=PATH (the CA the other side must chain to) in --channel, or --tls-cert PATH, --tls-key PATH, --tls-ca PATH'],
    [[['channel', 'p=tls-peer,cert=/pki/router.crt'], ['tls-key', '/pki/router.key']], '--channel: channel "p" (protocol tls) needs ca=PATH (the CA the other side must chain to) in --channel, or --tls-ca PATH'],
  ] as Array<[Array<[string, string]>, string]>)('says what a tls channel given by flag lacks in flag syntax (%#)', (argv, message) => {
    expect(errorOf(() => load('', argv))).toBe(message);
  });

  test('refuses a certificate that is not valid at load time naming its line', () => {
    const msg = errorOf(() => load(`${GLOBAL}${peer('')}`, [], Date.now() + 30 * 86_400_000));
    expect(msg).toStartWith('c.yaml:1: channel "partner": certificate /pki/router.crt is not valid now');
  });

  test('reports a broken global certificate once, naming every channel that uses it', () => {
    const text = `tls_cert: /pki/gone.crt\ntls_key: /pki/router.key\ntls_ca: /pki/ca.crt\n${peer('')}  other:\n    protocol: tls\n    kind: peer\n`;
    expect(errorOf(() => load(text))).toBe('c.yaml:1: channel "partner", channel "other": cannot read certificate /pki/gone.crt: ENOENT: no such file or directory, open \'/pki/gone.crt\'');
  });

  test('leaves the global TLS settings unread when nothing uses them', () => {
    const c = load('tls_cert: /pki/gone.crt\ntls_key: /pki/gone.key\ntls_ca: /pki/gone.crt\nchannels:\n  hub:\n    kind: tunnel\n    gateway: 192.0.2.1\n');
    expect(c.tlsCert).toBe('/pki/gone.crt');
    expect(c.tlsCredentials).toBeUndefined();
  });
});

describe('config local_identity', () => {
  test('keeps an IPsec channel\'s own local identity and leaves the others to local_id', () => {
    const c = load('local_id: router.test\nchannels:\n  a:\n    kind: peer\n    local_identity: "C=JP, O=corp, CN=router-a"\n  b:\n    kind: tunnel\n    gateway: 192.0.2.1\n');
    expect(c.channels[0]!.localIdentity).toBe('C=JP, O=corp, CN=router-a');
    expect(c.channels[1]!.localIdentity).toBeUndefined();
    expect(c.localId).toBe('router.test');
  });

  test('puts a channel\'s local identity in its VICI connection and local_id in the others when loading both', () => {
    const c = load('local_id: router.test\nchannels:\n  a:\n    kind: peer\n    local_identity: router-a.corp.test\n  b:\n    kind: tunnel\n    gateway: 192.0.2.1\n');
    const ctx = { mode: 'host' as const, lan: [], localId: c.localId };
    const body = peerConn(c.channels[0]!, '198.51.100.7', 'www.partner.test', ctx);
    expect(body).toEqual({
      version: '2',
      local_addrs: ['%any'],
      remote_addrs: ['198.51.100.7'],
      proposals: ['default'],
      send_cert: 'always',
      local: { auth: 'pubkey', id: 'router-a.corp.test' },
      remote: { auth: 'pubkey', id: 'www.partner.test' },
      keyingtries: '1',
      children: {
        'dnsseal-peer-a-198.51.100.7': {
          mode: 'transport',
          local_ts: ['dynamic'],
          remote_ts: ['dynamic'],
          esp_proposals: ['aes256gcm16'],
          mark_in: '0x5e510001/0xffffffff',
          mark_out: '0x5e510001/0xffffffff',
          set_mark_in: '0x5e510001/0xffffffff',
          set_mark_out: '0x5e510000/0xffffffff',
        },
      },
    });
    // On the wire: the section `local` holds auth=pubkey and id=router-a.corp.test, byte for byte
    // (SECTION_START 01, KEY_VALUE 03, SECTION_END 02; names u8-prefixed, values u16-prefixed).
    const local = [0x01, 5, ...Buffer.from('local'), 0x03, 4, ...Buffer.from('auth'), 0x00, 6, ...Buffer.from('pubkey'), 0x03, 2, ...Buffer.from('id'), 0x00, 18, ...Buffer.from('router-a.corp.test'), 0x02];
    const wire = encodeMessage(body);
    expect(Buffer.from(wire).indexOf(Buffer.from(local))).toBeGreaterThan(0);
    expect(decodeMessage(wire)).toEqual(body);
    expect(tunnelConn(c.channels[1]!, ctx).local).toEqual({ auth: 'pubkey', id: 'router.test' });
    expect(tunnelConn(c.channels[1]!, { ...ctx, localId: undefined }).local).toEqual({ auth: 'pubkey' });
  });

  test.each([
    ['a tls channel', 'channels:\n  p:\n    protocol: tls\n    kind: peer\n', 'c.yaml:3: channel "p": a policy server hands out IPsec channels only'],
    ['a local identity', 'channels:\n  p:\n    kind: peer\n    local_identity: router.test\n', 'c.yaml:4: channel "p": local_identity is a node\'s own identity and a policy server cannot hand it out'],
  ])('refuses %s in a policy server\'s file', (_what, text, message) => {
    expect(errorOf(() => loadConfigText(text, 'c.yaml', new Map(), deps(), 'policy-server'))).toStartWith(message);
  });
});
