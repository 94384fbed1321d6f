/**
 * The compiled intercept object, embedded in dist/dnsseal like the main one (`bun build
 * --compile` bundles files imported with { type: 'file' }). Needs the Makefile rule that builds
 * build/intercept.bpf.o before bundling or testing; pass `interceptObjectPath` to createIntercept.
 */
import objPath from '../../build/intercept.bpf.o' with { type: 'file' };

export const interceptObjectPath: string = objPath;
