import { describe, expect, test } from 'bun:test';
import { renderReference } from '../../src/config/reference.ts';
import { SETTING_FLAGS, SETTINGS } from '../../src/config/settings.ts';

describe('config/reference', () => {
  const md = renderReference();
  test.each(SETTINGS.map((s) => s.key))('documents top-level key %p', (key) => {
    expect(md).toContain(`| \`${key}\` |`);
  });
  test.each(['config', ...SETTING_FLAGS.map((f) => f.name)])('documents flag --%s', (name) => {
    expect(md).toContain(`\`--${name}`);
  });
  test('keeps every table row at the same column count as its header', () => {
    const lines = md.split('\n');
    let cols = 0;
    for (const l of lines) {
      if (!l.startsWith('|')) {
        cols = 0;
        continue;
      }
      const n = l.replace(/\\\|/g, '').split('|').length;
      if (cols === 0) cols = n;
      expect([l, n]).toEqual([l, cols]);
    }
  });
});

describe('config/reference file', () => {
  test('matches src/config/REFERENCE.md when the settings change (regenerate: bun src/main.ts config-reference > src/config/REFERENCE.md)', async () => {
    const onDisk = await Bun.file(new URL('../../src/config/REFERENCE.md', import.meta.url)).text();
    expect(onDisk).toBe(renderReference());
  });
});
