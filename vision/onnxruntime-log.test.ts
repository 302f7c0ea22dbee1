import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

// The child tries cuda first (its library is not installed on a CPU-only machine), then cpu: what a
// simulated edge device or `npm start` does with the default provider list.
const CHILD = `
import * as ort from 'onnxruntime-node';
if (process.env.IMPORT_PIPELINE === '1') await import(${JSON.stringify(new URL('./pipeline.ts', import.meta.url).href)});
const varint = (n) => { const b = []; while (n > 127) { b.push((n & 127) | 128); n >>>= 7; } b.push(n); return b; };
const field = (no, bytes) => [...varint((no << 3) | 2), ...varint(bytes.length), ...bytes];
const str = (no, s) => field(no, [...Buffer.from(s)]);
const int = (no, n) => [...varint(no << 3), ...varint(n)];
// ModelProto { ir_version 8, opset 13, graph { y = Identity(x), x and y float[1] } }
const valueInfo = (name) => [...str(1, name), ...field(2, field(1, [...int(1, 1), ...field(2, field(1, int(1, 1)))]))];
const graph = [...field(1, [...str(1, 'x'), ...str(2, 'y'), ...str(4, 'Identity')]), ...str(2, 'g'), ...field(11, valueInfo('x')), ...field(12, valueInfo('y'))];
const model = Uint8Array.from([...int(1, 8), ...field(8, int(2, 13)), ...field(7, graph)]);
try {
  await ort.InferenceSession.create(model, { executionProviders: ['cuda'] });
  console.log('cuda available');
} catch {
  console.log('cuda missing');
}
const session = await ort.InferenceSession.create(model, { executionProviders: ['cpu'] });
const out = await session.run({ x: new ort.Tensor('float32', new Float32Array([3]), [1]) });
console.log('cpu ran', out.y.data[0]);
`;

let dir: string;
let script: string;

beforeAll(async () => {
  // Inside the project so the child resolves onnxruntime-node and the tsx loader from node_modules.
  dir = await mkdtemp(path.join(import.meta.dirname, '.ort-log-'));
  script = path.join(dir, 'child.mjs');
  await writeFile(script, CHILD);
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

function runChild(importPipeline: boolean): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      ['--import', 'tsx', script],
      { cwd: dir, env: { ...process.env, IMPORT_PIPELINE: importPipeline ? '1' : '0' }, timeout: 60_000 },
      (err, stdout, stderr) =>
        err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve({ stdout, stderr }),
    );
  });
}

describe('onnxruntime log on a CPU-only machine', () => {
  it('creating sessions through the vision pipeline prints no provider-library error on stderr', async () => {
    const { stdout, stderr } = await runChild(true);
    expect(stdout).toContain('cpu ran 3');
    if (stdout.includes('cuda available')) return; // a machine with CUDA has nothing to hide
    expect(stderr).not.toMatch(/Failed to load|\[E:onnxruntime/);
  });

  it('onnxruntime on its own does print it (the check above is not vacuous)', async () => {
    const { stdout, stderr } = await runChild(false);
    if (stdout.includes('cuda available')) return;
    expect(stderr).toMatch(/\[E:onnxruntime/);
  });
});
