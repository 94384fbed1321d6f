/** `import x from './file.yaml' with { type: 'text' }` gives the file's text (Bun; embedded by --compile). */
declare module '*.yaml' {
  const text: string;
  export default text;
}
