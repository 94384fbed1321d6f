/** `pin_root` / `--pin-root`: default, file, flag winning, and refused paths located at line or flag. */
import { describe, expect, test } from 'bun:test';
import { configError, loadWith } from './fixtures.ts';

const BASE = 'upstreams: {default: 192.0.2.53}\n';
const load = loadWith;

describe('config: pin_root', () => {
  test('defaults to /sys/fs/bpf/dnsseal when nothing sets it', () => {
    expect(load(BASE).pinRoot).toBe('/sys/fs/bpf/dnsseal');
  });

  test('reads the file and drops a trailing slash when the file sets it', () => {
    expect(load(`${BASE}pin_root: /sys/fs/bpf/dnsseal-b/\n`).pinRoot).toBe('/sys/fs/bpf/dnsseal-b');
  });

  test('the flag wins over the file when both are given', () => {
    expect(load(`${BASE}pin_root: /sys/fs/bpf/a\n`, ['pin-root', '/sys/fs/bpf/b']).pinRoot).toBe('/sys/fs/bpf/b');
  });

  test.each([
    ['relative', 'dnsseal'],
    ['with ..', '/sys/fs/bpf/../dnsseal'],
    ['the mount itself', '/sys/fs/bpf/'],
  ])('refuses a %s path with its line or flag when it cannot be a pin root', (_what, path) => {
    expect(configError(() => load(`${BASE}pin_root: ${path}\n`)).message).toContain('dnsseal.yaml:2');
    expect(configError(() => load(BASE, ['pin-root', path])).message).toContain('--pin-root');
  });
});
