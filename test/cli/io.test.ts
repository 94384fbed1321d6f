/** The CLI's output writer: complete output, a reader gone early is quiet, any other failure is reported. */
import { describe, expect, test } from 'bun:test';
import { streamIo, type WriteTarget } from '../../src/cli/io.ts';

/** A target whose writes succeed until `failAfter` of them, then fail with `code`. */
function target(failAfter: number, code?: string): WriteTarget & { text: string } {
  let n = 0;
  const t = {
    text: '',
    write(chunk: string, cb: (err?: Error | null) => void) {
      if (code !== undefined && n++ >= failAfter) {
        const err = Object.assign(new Error(`${code}: failed, write`), { code });
        queueMicrotask(() => cb(err));
        return false;
      }
      t.text += chunk;
      queueMicrotask(() => cb(null));
      return true;
    },
  };
  return t;
}

describe('cli/io', () => {
  test('flush reports nothing when every write left', async () => {
    const out = target(0);
    const io = streamIo(out, target(0));
    io.out('a\n');
    io.out('b\n');
    expect(await io.flush()).toBeUndefined();
    expect(out.text).toBe('a\nb\n');
  });

  test.each(['EPIPE', 'ECONNRESET'])('flush reports nothing when the reader went away (%s)', async (code) => {
    const io = streamIo(target(1, code), target(0));
    io.out('a\n');
    io.out('b\n');
    io.out('c\n');
    expect(await io.flush()).toBeUndefined();
  });

  test.each(['ENOSPC', 'EIO', 'EBADF'])('flush returns the failure when stdout cannot be written (%s)', async (code) => {
    const io = streamIo(target(1, code), target(0));
    io.out('a\n');
    io.out('b\n');
    io.out('c\n');
    const f = await io.flush();
    expect(f?.stream).toBe('stdout');
    expect((f?.error as { code?: string }).code).toBe(code);
  });

  test('flush returns a stderr failure when only stderr could not be written', async () => {
    const io = streamIo(target(0), target(0, 'ENOSPC'));
    io.err('oops\n');
    expect((await io.flush())?.stream).toBe('stderr');
  });
});
