/**
 * The compiled eBPF object, embedded in dist/dnsseal (`bun build --compile` bundles files
 * imported with { type: 'file' }). `make bpf` must have run before bundling or testing.
 */
import { readFileSync } from 'node:fs';
import { DnssealError, errorMessage } from '../../util/errors.ts';
import objPath from '../../../build/dnsseal.bpf.o' with { type: 'file' };

/** The object's bytes (read from the embedded file, or from build/ when running from source). */
export function readBpfObject(path: string = objPath): Uint8Array {
  try {
    return new Uint8Array(readFileSync(path));
  } catch (err) {
    throw new DnssealError('bpf', 'object_missing', `cannot read the eBPF object ${path}: ${errorMessage(err)} (run make bpf)`, { cause: err });
  }
}

export const embeddedObjectPath: string = objPath;
