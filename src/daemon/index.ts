/** The daemon (`dnsseal run`): see README.md in this folder. */
export { runDaemon } from './run.ts';
export { kernelDown, type KernelDownOptions } from './down.ts';
export * from './types.ts';
