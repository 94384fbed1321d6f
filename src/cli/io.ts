/**
 * Where the CLI writes: stdout for results, stderr for errors (tests capture both).
 *
 * Output must be complete whatever stdout is (a terminal, a file, a pipe) and however large:
 * `process.stdout.write` into a pipe only queues what the pipe cannot take yet, and an exit
 * right after it cuts the output (at 64 KiB, the pipe's size). So the process io keeps every
 * write in order and `flush()` resolves once the last one has been handed to the kernel;
 * src/main.ts exits only after it. A reader that goes away early (`dnsseal list | head`) is not
 * an error: the rest of the output is dropped quietly.
 */
export interface CliIo {
  out(text: string): void;
  err(text: string): void;
}

/** The io main.ts uses: also waits until everything written has left. */
export interface FlushableIo extends CliIo {
  /** Resolves once every write so far is out (or its reader is gone). */
  flush(): Promise<void>;
}

/** What the io needs of process.stdout / process.stderr (tests pass their own). */
export interface WriteTarget {
  write(chunk: string, callback: (err?: Error | null) => void): unknown;
}

/**
 * An ordered writer to one target: each write's callback says the data left (or the reader is
 * gone: EPIPE, after which writes are dropped). Nothing is buffered here beyond what the target
 * holds; `done` is the promise of the last write.
 */
function orderedWriter(target: WriteTarget): { write(text: string): void; done(): Promise<void> } {
  let last: Promise<void> = Promise.resolve();
  let gone = false;
  return {
    write(text: string) {
      if (gone || text === '') return;
      last = new Promise<void>((resolve) => {
        target.write(text, (err) => {
          // EPIPE and friends: the reader closed (`| head`); the rest has nowhere to go.
          if (err) gone = true;
          resolve();
        });
      });
    },
    done: () => last,
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
