/** Vite's `?raw` imports: a file's text (the contract tests read the README this way). */
declare module "*?raw" {
  const text: string;
  export default text;
}

/** Vite's `import.meta.glob` (the contract tests read src/ this way, without node:fs). */
interface ImportMeta {
  glob(pattern: string, options: { query: "?raw"; import: "default"; eager: true }): Record<string, string>;
}
