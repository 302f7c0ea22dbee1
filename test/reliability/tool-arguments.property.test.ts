import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../app/config.js';
import type { Role } from '../../core/context.js';
import { silentLogger } from '../../core/log.js';
import { createPlatform, type Platform } from '../../app/platform.js';
import {
  createToolRegistry,
  runTool,
  type ToolContext,
  type ToolRegistry,
  type ToolResult,
  type ToolServices,
} from '../../tools/index.js';

const CODES = [
  'not_found',
  'invalid_input',
  'unauthenticated',
  'forbidden',
  'conflict',
  'unavailable',
  'approval_required',
  'rate_limited',
];
const log = silentLogger();

/** Values an LLM, an MCP client or an attacker might put in any field. */
const hostileValue = fc.oneof(
  fc.jsonValue({ maxDepth: 2 }),
  fc.constantFrom(
    'helmets-demo',
    'helmets-demo@1',
    'helmets-demo@999999999999',
    '../../etc/passwd',
    '/',
    '',
    ' ',
    'job_x',
    'mv_x',
    '\u0000',
    '\ud800',
    'x'.repeat(10_000),
    -1,
    0,
    1e308,
    Number.MAX_SAFE_INTEGER,
    0.5,
    'yolo',
    'coco',
    'voc',
    'train',
    'production',
    { kind: 'folder', path: '/nonexistent' },
    { kind: 'zip', path: '/nonexistent.zip' },
    { kind: 'storage', prefix: '../' },
    { train: 0.8, val: 0.1, test: 0.1 },
    { train: -1, val: 2, test: 0 },
    { __proto__: { admin: true } },
  ),
);

/** Random arguments shaped like a tool's input: its own field names with hostile values, or anything at all. */
function argumentsFor(registry: ToolRegistry, name: string): fc.Arbitrary<unknown> {
  const props = Object.keys((registry.schema(name).inputSchema.properties ?? {}) as Record<string, unknown>);
  const shaped =
    props.length === 0
      ? fc.constant({})
      : fc.dictionary(fc.oneof(fc.constantFrom(...props), fc.string({ maxLength: 5 })), hostileValue, {
          maxKeys: props.length + 1,
        });
  return fc.oneof(
    { weight: 3, arbitrary: shaped },
    { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 2 }) },
    { weight: 1, arbitrary: fc.constantFrom(undefined, null, [], 'text', 42) },
  );
}

function expectStructured(result: ToolResult, label: string): void {
  if (result.ok) return;
  expect(CODES, `${label}: ${JSON.stringify(result.error).slice(0, 400)}`).toContain(result.error.code);
  expect(typeof result.error.message).toBe('string');
  expect(result.error.message.length).toBeGreaterThan(0);
  expect(result.error.message).not.toMatch(/\n\s+at |node_modules|\.ts:\d+/);
}

describe('tool arguments under random input (every registered tool, through runTool)', () => {
  let dataDir: string;
  let platform: Platform;
  let registry: ToolRegistry;
  let services: ToolServices;

  const ctx = (role: Role): ToolContext => ({
    user: { userId: `fuzz-${role}`, email: `${role}@fuzz.test`, name: role, role, kind: 'user' },
    projectId: 'default',
    requestId: 'fuzz',
    threadId: 'thread-fuzz',
    log,
    services,
    registry,
  });

  beforeAll(async () => {
    dataDir = mkdtempSync(path.join(tmpdir(), 'vrel-tools-'));
    const config = loadConfig(
      {
        DATA_DIR: dataDir,
        LOG_LEVEL: 'silent',
        EMBEDDED_GPU_RUNNER: 'false',
        SIMULATED_DEVICES: '0',
        DEMO_DATASET: 'false',
      },
      dataDir,
    );
    platform = await createPlatform(config, log);
    await platform.prepare();
    services = platform.tools.services;
    registry = createToolRegistry();
  });

  afterAll(async () => {
    await platform.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('registers the tools of every service given to it', () => {
    expect(registry.names().length).toBeGreaterThanOrEqual(10);
  });

  it('read tools answer random arguments with output or a structured error, never a throw or an internal error', async () => {
    const reads = registry.list().filter((t) => t.risk === 'read');
    for (const tool of reads) {
      await fc.assert(
        fc.asyncProperty(
          argumentsFor(registry, tool.name),
          fc.constantFrom<Role>('viewer', 'admin'),
          async (args, role) => {
            const result = await runTool(ctx(role), tool.name, args);
            expectStructured(result, tool.name);
          },
        ),
        { numRuns: 40 },
      );
    }
  }, 60_000);

  it('write and critical tools never run on random arguments: invalid input, forbidden or approval required', async () => {
    const gated = registry.list().filter((t) => t.risk !== 'read' && t.authorizesItself !== true);
    expect(gated.length).toBeGreaterThan(0);
    for (const tool of gated) {
      await fc.assert(
        fc.asyncProperty(
          argumentsFor(registry, tool.name),
          fc.constantFrom<Role>('viewer', 'operator', 'admin'),
          fc.option(fc.oneof(fc.string({ maxLength: 20 }), fc.constantFrom('apr_missing', "' OR 1=1 --")), {
            nil: undefined,
          }),
          async (args, role, approvalId) => {
            const result = await runTool(
              ctx(role),
              tool.name,
              args,
              approvalId === undefined ? {} : { approvalId },
            );
            expectStructured(result, tool.name);
            expect(result.ok, `${tool.name} ran without an approval`).toBe(false);
          },
        ),
        { numRuns: 40 },
      );
    }
    const { entries } = await platform.audit.query({
      projectId: 'default',
      action: 'tool.started',
      limit: 1000,
    });
    expect(entries.filter((e) => gated.some((t) => t.name === e.tool))).toEqual([]);
  }, 60_000);

  it('arguments with invalid Unicode (a lone surrogate in every field) give a structured error, never a throw', async () => {
    for (const tool of registry.list()) {
      const props = Object.keys(
        (registry.schema(tool.name).inputSchema.properties ?? {}) as Record<string, unknown>,
      );
      const args = Object.fromEntries(props.map((p) => [p, 'bad \ud800 text']));
      const result = await runTool(ctx('admin'), tool.name, args);
      expectStructured(result, tool.name);
    }
    const withString = await runTool(ctx('viewer'), 'training_status', { jobId: 'job_\ud800' });
    expect(withString.ok).toBe(false);
  });

  it('unknown tool names and random names give not_found listing the known tools', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.string({ maxLength: 30 }),
          fc.constantFrom('__proto__', 'constructor', 'toString', 'hasOwnProperty'),
        ),
        async (name) => {
          fc.pre(!registry.has(name));
          const result = await runTool(ctx('admin'), name, {});
          expect(result).toMatchObject({
            ok: false,
            error: { code: 'not_found', message: expect.stringMatching(/known tools/) },
          });
        },
      ),
      { numRuns: 100 },
    );
  });
});
