import { describe, expect, test } from 'bun:test';
import { NoneDatapath } from '../../src/datapath/none.ts';
import { datapathConformance, datapathStateConformance } from './conformance.ts';
import { createDatapath } from '../../src/datapath/factory.ts';
import { FakeDatapath } from '../../src/datapath/fake.ts';
import { FakeClock } from '../../src/util/clock.ts';
import { createLogger } from '../../src/util/log.ts';
import { DnssealError } from '../../src/util/errors.ts';

datapathConformance('none', () => new NoneDatapath());
datapathStateConformance('none', () => new NoneDatapath());

describe('datapath/none', () => {
  test('kind is none when constructed', () => {
    expect(new NoneDatapath().kind).toBe('none');
  });

  test('client groups and channels are recorded when set', () => {
    const dp = new NoneDatapath();
    dp.setClientGroups([{ cidr: '10.0.0.0/8', group: 1 }]);
    dp.setChannels([{ id: 1, mark: 0x5e510001, up: true }]);
    expect(dp.clientGroups).toEqual([{ cidr: '10.0.0.0/8', group: 1 }]);
    expect(dp.channels).toEqual([{ id: 1, mark: 0x5e510001, up: true }]);
  });

  test('a channel row keeps its gateway and peer kind when given', () => {
    const dp = new NoneDatapath();
    dp.setChannels([{ id: 40000, mark: 0x5e519c40, up: false, gateway: '198.51.100.1', peer: false }]);
    expect(dp.channels).toEqual([{ id: 40000, mark: 0x5e519c40, up: false, gateway: '198.51.100.1', peer: false }]);
  });
});

function capture() {
  const lines: string[] = [];
  return { lines, log: createLogger({ level: 'debug', write: (l) => lines.push(l) }) };
}

describe('datapath/factory', () => {
  const clock = new FakeClock();

  test.each([
    ['none', 'none'],
    ['fake', 'fake'],
  ] as const)('kind %s gives backend %s when asked for it', (kind, expected) => {
    const { log, lines } = capture();
    const dp = createDatapath(kind, { log, clock, capacity: 3 });
    expect(dp.kind).toBe(expected);
    expect(lines.join('\n')).toContain(`backend=${expected}`);
  });

  test('fake gets the capacity when one is given', () => {
    const dp = createDatapath('fake', { log: capture().log, clock, capacity: 3 });
    expect(dp).toBeInstanceOf(FakeDatapath);
    expect((dp as FakeDatapath).capacity).toBe(3);
  });

  test('auto picks ebpf when the eBPF backend starts', () => {
    const { log, lines } = capture();
    const ebpf = new FakeDatapath();
    const dp = createDatapath('auto', { log, clock, ebpf: () => ebpf });
    expect(dp).toBe(ebpf);
    expect(lines.join('\n')).toContain('auto: eBPF available');
  });

  const noCapBpf = () => {
    throw new DnssealError('datapath', 'unavailable', 'no CAP_BPF');
  };

  test('auto falls back to none and logs why when the eBPF backend fails and nothing is protectable', () => {
    const { log, lines } = capture();
    const dp = createDatapath('auto', { log, clock, ebpf: noCapBpf, protects: [] });
    expect(dp.kind).toBe('none');
    const out = lines.join('\n');
    expect(out).toContain('level=warn');
    expect(out).toContain('no CAP_BPF');
    expect(out).toContain('protects nothing');
  });

  test('auto refuses with why eBPF failed and how to run record-only when the policy protects something', () => {
    const { log } = capture();
    let err: unknown;
    try {
      createDatapath('auto', { log, clock, ebpf: noCapBpf, protects: ['2 rules with a channel', '1 static'] });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(DnssealError);
    expect((err as DnssealError).code).toBe('ebpf_required');
    const msg = (err as DnssealError).message;
    expect(msg).toStartWith('datapath: auto: eBPF could not start (datapath: no CAP_BPF)');
    expect(msg).toContain('2 rules with a channel, 1 static');
    expect(msg).toContain('--datapath none');
  });

  test('auto refuses when it is not told what the configuration protects', () => {
    expect(() => createDatapath('auto', { log: capture().log, clock, ebpf: noCapBpf })).toThrow('eBPF could not start');
  });

  test('auto falls back to none when no eBPF backend is built in and nothing is protectable', () => {
    const { log, lines } = capture();
    expect(createDatapath('auto', { log, clock, protects: [] }).kind).toBe('none');
    expect(lines.join('\n')).toContain('no eBPF backend');
  });

  test('auto refuses when no eBPF backend is built in and the policy protects something', () => {
    expect(() => createDatapath('auto', { log: capture().log, clock, protects: ['policy server corp'] })).toThrow('this build has no eBPF backend');
  });

  test('ebpf throws instead of falling back when the backend fails', () => {
    const run = () =>
      createDatapath('ebpf', {
        log: capture().log,
        clock,
        ebpf: () => {
          throw new Error('EPERM');
        },
      });
    expect(run).toThrow(DnssealError);
    expect(run).toThrow('datapath: backend ebpf could not start: EPERM');
  });

  test('ebpf throws unavailable when no backend is built in', () => {
    try {
      createDatapath('ebpf', { log: capture().log, clock });
      throw new Error('expected a throw');
    } catch (err) {
      expect((err as DnssealError).code).toBe('unavailable');
    }
  });
});
