/** Vite's `?raw` imports: a file's text (the contract tests read the README this way). */
declare module "*?raw" {
  const text: string;
  export default text;
}
