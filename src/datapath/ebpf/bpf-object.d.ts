/** `import p from '…/dnsseal.bpf.o' with { type: 'file' }` yields the (embedded) file's path. */
declare module '*.bpf.o' {
  const path: string;
  export default path;
}
