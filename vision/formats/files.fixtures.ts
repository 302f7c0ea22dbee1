import type { DatasetFiles } from './types.js';

/** An in-memory file tree for parser tests; image files map to empty strings. */
export function memoryFiles(files: Record<string, string>): DatasetFiles {
  return {
    paths: Object.keys(files),
    readText: async (p) => {
      const text = files[p];
      if (text === undefined) throw new Error(`ENOENT: ${p}`);
      return text;
    },
  };
}
