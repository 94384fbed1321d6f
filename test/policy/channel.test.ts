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

  test.each([
    [{ kind: 'vpn' }, 'kind', /kind must be "tunnel".*"peer"/],
    [{ kind: 'tunnel' }, 'gateway', /needs "gateway/],
    [{ kind: 'tunnel', gateway: 'bad gw' }, 'gateway', /neither an IP address nor a host name/],
    [{ kind: 'peer', gateway: '192.0.2.1' }, 'gateway', /peer channel has no gateway/],
    [{ kind: 'tunnel', gateway: 'hub.example', identity: '%name' }, 'identity', /only makes sense for a peer/],
    [{ kind: 'peer', esp: '3des' }, 'esp', /channel "c": esp "3des" refused: .*3DES.*use an AEAD/],
    [{ kind: 'peer', negotiate: 'later' }, 'negotiate', /before-answer/],
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
