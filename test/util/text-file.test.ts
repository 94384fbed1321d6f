/**
 * Files an operator names are read through readTextFile: a device is refused before it is read
 * (`/dev/zero` would be read forever), at every place such a path is taken.
 */
import { describe, expect, test } from 'bun:test';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadPolicyServerConfig } from '../../src/policy-server/config.ts';
import { readTlsCa } from '../../src/proxy/proxy.ts';
import { readTextFile } from '../../src/util/text-file.ts';

describe('util/readTextFile', () => {
  test('refuses a device, reads /dev/null as empty and a file as its text', () => {
    expect(() => readTextFile('/dev/zero')).toThrow('a device, not a file');
    expect(readTextFile('/dev/null')).toBe('');
    const dir = mkdtempSync(join(tmpdir(), 'dnsseal-text-'));
    try {
      writeFileSync(join(dir, 'f'), 'text\n');
      expect(readTextFile(join(dir, 'f'))).toBe('text\n');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('upstream_tls_ca on a device is refused, naming the setting and the file', () => {
    expect(() => readTlsCa('/dev/zero')).toThrow(/upstream_tls_ca \/dev\/zero: cannot read it: .*a device/);
  });

  test("a policy server's config file or zone file on a device is refused", () => {
    const noBase = () => {
      throw new Error('not reached');
    };
    expect(() => loadPolicyServerConfig('/dev/zero', noBase as never)).toThrow(/cannot read config: .*a device/);
    const text = 'serve:\n  zone: /dev/zero\n';
    let err: unknown;
    try {
      loadPolicyServerConfig('/tmp/ps.yaml', (() => ({})) as never, text);
    } catch (e) {
      err = e;
    }
    expect(String((err as Error)?.message ?? err)).toMatch(/cannot read zone file \/dev\/zero: .*a device/);
  });
});
