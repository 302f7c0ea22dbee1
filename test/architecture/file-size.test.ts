import { mkdtempSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

// "No source file over ~400 lines without a stated reason" (docs/architecture.md, issue #16).
const MAX_LINES = 400;
// The source folders of `npm run deps`, without test/ (tests and test support may be long).
const SOURCE_FOLDERS =
  'core protocol app services vision tools agent mcp-server web-chat gpu-runner edge-runner bin evals bench'.split(
    ' ',
  );
const root = path.resolve(import.meta.dirname, '../..');
// A reason is a `size:` comment in the first lines: `// size: the paraphrase corpus is data`.
const REASON = /^\s*(\/\/|\/?\*+)\s*size:\s*\S/;
const REASON_WITHIN_LINES = 10;

const isSource = (file: string) =>
  file.endsWith('.ts') &&
  !file.endsWith('.d.ts') &&
  !/\.(test|fixtures|contract)\.ts$/.test(file) &&
  !file.split('/').includes('testing');

function* sourceFiles(dir: string, rel = ''): Generator<string> {
  for (const entry of readdirSync(path.join(dir, rel), { withFileTypes: true })) {
    const file = rel === '' ? entry.name : `${rel}/${entry.name}`;
    if (entry.isDirectory()) {
      if (entry.name !== 'node_modules' && entry.name !== 'public') yield* sourceFiles(dir, file);
    } else if (isSource(file)) yield file;
  }
}

/** Source files under `folders` of `base` longer than MAX_LINES whose first lines state no reason. */
function oversized(base: string, folders: string[]): Array<{ file: string; lines: number }> {
  const found: Array<{ file: string; lines: number }> = [];
  for (const folder of folders) {
    for (const file of sourceFiles(base, folder)) {
      const lines = readFileSync(path.join(base, file), 'utf8').replace(/\n$/, '').split('\n');
      if (lines.length <= MAX_LINES) continue;
      if (lines.slice(0, REASON_WITHIN_LINES).some((l) => REASON.test(l))) continue;
      found.push({ file, lines: lines.length });
    }
  }
  return found.sort((a, b) => a.file.localeCompare(b.file));
}

describe('the file size floor', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'file-size-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  function tree(files: Record<string, string>): void {
    for (const [file, text] of Object.entries(files)) {
      mkdirSync(path.dirname(path.join(dir, file)), { recursive: true });
      writeFileSync(path.join(dir, file), text);
    }
  }
  const body = (n: number) =>
    Array.from({ length: n }, (_, i) => `export const v${i} = ${i};`).join('\n') + '\n';

  it('reports a long source file without a stated reason, and only that one', () => {
    tree({
      'services/big/big.service.ts': body(401),
      'services/big/ok.service.ts': body(400),
      'services/big/data.ts': `/**\n * The corpus.\n * size: data, one phrase a line\n */\n${body(500)}`,
      'services/big/big.service.test.ts': body(900),
      'services/big/big.fixtures.ts': body(900),
      'web-chat/public/assets/app.ts': body(900),
      'agent/long.ts': `// size: one state machine\n${body(450)}`,
      'agent/unstated.ts': `// a long file\n${body(450)}`,
    });
    expect(oversized(dir, ['services', 'agent', 'web-chat'])).toEqual([
      { file: 'agent/unstated.ts', lines: 451 },
      { file: 'services/big/big.service.ts', lines: 401 },
    ]);
  });

  it('finds no long source file without a stated reason in the real tree', () => {
    expect(oversized(root, SOURCE_FOLDERS)).toEqual([]);
  });
});
