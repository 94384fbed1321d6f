import { describe, expect, test } from 'bun:test';
import { buildChannel, FieldError } from '../../src/policy/channel.ts';
import { channelMark } from '../../src/policy/types.ts';

describe('policy/channel', () => {
  test('defaults a tunnel identity to its gateway and esp to aes256gcm16', () => {
    expect(buildChannel('hub', { kind: 'tunnel', gateway: '192.0.2.1' }, 3)).toEqual({
      name: 'hub', id: 3, mark: channelMark(3), protocol: 'ipsec', kind: 'tunnel', gateway: '192.0.2.1', identity: '192.0.2.1', esp: 'aes256gcm16',
    });
  });

  test('defaults a peer identity to %name and negotiation to before-answer', () => {
    const c = buildChannel('p', { kind: 'peer' }, 1);
    expect([c.identity, c.negotiate, c.gateway]).toEqual(['%name', 'before-answer', undefined]);
  });

  test('keeps negotiate_timeout as the channel wait when a before-answer peer sets it', () => {
    expect(buildChannel('p', { kind: 'peer', negotiate_timeout: 5000 }, 1)).toMatchObject({ negotiate: 'before-answer', negotiateTimeoutMs: 5000 });
    expect(buildChannel('p', { kind: 'peer', negotiate: 'before-answer', negotiate_timeout: 100 }, 1).negotiateTimeoutMs).toBe(100);
    expect(buildChannel('p', { kind: 'peer', negotiate_timeout: 60_000 }, 1).negotiateTimeoutMs).toBe(60_000);
  });

  test('leaves negotiateTimeoutMs unset when negotiate_timeout is not given', () => {
    expect('negotiateTimeoutMs' in buildChannel('p', { kind: 'peer' }, 1)).toBe(false);
    expect('negotiateTimeoutMs' in buildChannel('p', { kind: 'peer', negotiate: 'on-traffic' }, 1)).toBe(false);
  });

  test.each([
    [{ kind: 'vpn' }, 'kind', /kind must be "tunnel".*"peer"/],
    [{ kind: 'tunnel' }, 'gateway', /needs "gateway/],
    [{ kind: 'tunnel', gateway: 'bad gw' }, 'gateway', /neither an IP address nor a host name/],
    [{ kind: 'peer', gateway: '192.0.2.1' }, 'gateway', /peer channel has no gateway/],
    [{ kind: 'tunnel', gateway: 'hub.example', identity: '%name' }, 'identity', /only makes sense for a peer/],
    [{ kind: 'peer', esp: '3des' }, 'esp', /channel "c": esp "3des" refused: .*3DES.*use an AEAD/],
    [{ kind: 'peer', negotiate: 'later' }, 'negotiate', /before-answer/],
    [{ kind: 'peer', negotiate_timeout: 99 }, 'negotiate_timeout', /between 100 and 60000, not 99$/],
    [{ kind: 'peer', negotiate_timeout: 60_001 }, 'negotiate_timeout', /between 100 and 60000, not 60001$/],
    [{ kind: 'peer', negotiate_timeout: 250.5 }, 'negotiate_timeout', /whole number of milliseconds/],
    [{ kind: 'peer', negotiate_timeout: '5000' }, 'negotiate_timeout', /not "5000"$/],
    [{ kind: 'tunnel', gateway: '192.0.2.1', negotiate_timeout: 5000 }, 'negotiate_timeout', /applies to peer channels only/],
    [{ kind: 'peer', negotiate: 'on-traffic', negotiate_timeout: 5000 }, 'negotiate_timeout', /before-answer.*on-traffic/],
  ])('refuses %p pointing at field %p', (input, field, msg) => {
    let err: unknown;
    try {
      buildChannel('c', input, 1);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(FieldError);
    expect((err as FieldError).field).toBe(field);
    expect((err as FieldError).message).toMatch(msg);
  });
});
