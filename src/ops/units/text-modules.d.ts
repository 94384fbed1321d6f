/** `import x from './dnsseal.service' with { type: 'text' }` gives the file's text (Bun; embedded by --compile). */
declare module '*.service' {
  const text: string;
  export default text;
}
declare module '*.init' {
  const text: string;
  export default text;
}
