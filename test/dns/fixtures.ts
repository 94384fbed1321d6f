/** Loads the captured wire fixtures of test/fixtures/dns (see capture.ts there). */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CAPTURES } from '../fixtures/dns/capture.ts';

const DIR = join(import.meta.dir, '..', 'fixtures', 'dns');

export function hex(s: string): Uint8Array {
  return Uint8Array.from(Buffer.from(s.replace(/[^0-9a-f]/gi, ''), 'hex'));
}

export function fixture(file: string): { query: Uint8Array; answer: Uint8Array } {
  return {
    query: hex(readFileSync(join(DIR, `${file}.query.hex`), 'utf8')),
    answer: hex(readFileSync(join(DIR, `${file}.answer.hex`), 'utf8')),
  };
}

export const FIXTURE_NAMES = CAPTURES.map((c) => c.file);
export { CAPTURES };
