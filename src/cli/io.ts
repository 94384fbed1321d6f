/**
 * Where the CLI writes: stdout for results, stderr for errors (tests capture both).
 *
 * Output must be complete whatever stdout is (a terminal, a file, a pipe) and however large:
 * `process.stdout.write` into a pipe only queues what the pipe cannot take yet, and an exit
 * right after it cuts the output (at 64 KiB, the pipe's size). So the process io keeps every
 * write in order and `flush()` resolves once the last one has been handed to the kernel;
 * src/main.ts exits only after it. A reader that goes away early (`dnsseal list | head`) is not
 * an error: the rest of the output is dropped quietly. Any other write failure (a full disk,
 * `dnsseal config-default > /dev/full`, an I/O error) is: `flush()` returns it, and main.ts says
 * so and exits 2, so a cut-off file never looks like a success.
 */
export interface CliIo {
  out(text: string): void;
  err(text: string): void;
}

/** The io main.ts uses: also waits until everything written has left. */
export interface FlushableIo extends CliIo {
  /**
   * Resolves once every write so far is out (or its reader is gone), with the first write that
   * failed for another reason than a reader gone (EPIPE), if any: that output is incomplete.
   */
  flush(): Promise<WriteFailure | undefined>;
}

/** What the io needs of process.stdout / process.stderr (tests pass their own). */
export interface WriteTarget {
  write(chunk: string, callback: (err?: Error | null) => void): unknown;
}

/** A write that failed for another reason than its reader going away: the output is cut. */
export interface WriteFailure {
  stream: 'stdout' | 'stderr';
  error: Error;
}

/** The reader went away (`| head`): not a failure, the rest has nowhere to go. */
function readerGone(err: Error): boolean {
  const code = (err as { code?: unknown }).code;
  return code === 'EPIPE' || code === 'ECONNRESET' || code === 'ERR_STREAM_DESTROYED';
}

/**
 * An ordered writer to one target: each write's callback says the data left, or failed (after
 * which writes are dropped). Nothing is buffered here beyond what the target holds; `done` is
 * the promise of the last write; `failure` the first error that was not a reader gone.
 */
function orderedWriter(target: WriteTarget): { write(text: string): void; done(): Promise<void>; failure(): Error | undefined } {
  let last: Promise<void> = Promise.resolve();
  let gone = false;
  let failure: Error | undefined;
  return {
    write(text: string) {
      if (gone || text === '') return;
      last = new Promise<void>((resolve) => {
        target.write(text, (err) => {
          if (err) {
            gone = true;
            if (!readerGone(err)) failure ??= err;
          }
          resolve();
        });
      });
    },
    done: () => last,
    failure: () => failure,
  };
}

export function streamIo(stdout: WriteTarget, stderr: WriteTarget): FlushableIo {
  const o = orderedWriter(stdout);
  const e = orderedWriter(stderr);
  return {
    out: (t) => o.write(t),
    err: (t) => e.write(t),
    flush: async () => {
      await Promise.all([o.done(), e.done()]);
      const out = o.failure();
      if (out) return { stream: 'stdout', error: out };
      const err = e.failure();
      return err ? { stream: 'stderr', error: err } : undefined;
    },
  };
}

/**
 * The process's stdout and stderr. A closed pipe is reported through the write callback and
 * also emitted as an 'error' event; the listener keeps that from ending the process.
 */
export function processIo(): FlushableIo {
  for (const s of [process.stdout, process.stderr]) s.on('error', () => {});
  return streamIo(process.stdout, process.stderr);
}
