import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { promisify } from 'node:util';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../app/config.js';
import type { CallContext, Role } from '../core/context.js';
import { jpeg, writeTree } from '../services/datasets/datasets.fixtures.js';
import { silentLogger } from '../core/log.js';
import { createPlatform, type Platform } from '../app/platform.js';

const BIN = path.resolve(import.meta.dirname, '../bin/visioninapp.js');

describe('visioninapp mcp (stdio, real process)', () => {
  let dir: string;
  let platform: Platform;
  const clients: Client[] = [];
  const tokens: Record<string, string> = {};

  function spawnServer(token?: string): { transport: StdioClientTransport; stderr: () => string } {
    const env: Record<string, string> = {};
    for (const [k, v] of Object.entries(process.env))
      if (v !== undefined && k !== 'VISIONINAPP_TOKEN') env[k] = v;
    Object.assign(env, {
      DATA_DIR: dir,
      LOG_LEVEL: 'warn',
      DEMO_DATASET: 'false',
      SIMULATED_DEVICES: '0',
      EMBEDDED_GPU_RUNNER: 'false',
    });
    if (token !== undefined) env.VISIONINAPP_TOKEN = token;
    const transport = new StdioClientTransport({
      command: process.execPath,
      args: [BIN, 'mcp'],
      env,
      cwd: dir,
      stderr: 'pipe',
    });
    let err = '';
    transport.stderr?.on('data', (chunk: Buffer) => (err += chunk.toString()));
    return { transport, stderr: () => err };
  }

  async function connect(token?: string): Promise<{ client: Client; stderr: () => string; errors: Error[] }> {
    const { transport, stderr } = spawnServer(token);
    const client = new Client({ name: 'vitest-stdio', version: '1.0.0' });
    clients.push(client);
    // A line on stdout that is not JSON-RPC (a stray log) surfaces here as a parse error.
    const errors: Error[] = [];
    client.onerror = (err) => errors.push(err);
    await client.connect(transport);
    return { client, stderr, errors };
  }

  function ctxOf(userId: string, role: Role): CallContext {
    return {
      user: { userId, email: `${userId}@example.test`, name: userId, role, kind: 'user' },
      projectId: 'default',
      requestId: 'test',
      log: silentLogger(),
    };
  }

  async function user(name: string, role: Role): Promise<{ id: string; token: string }> {
    const u = await platform.accounts.createUser({
      email: `${name}@example.test`,
      name,
      password: 'correct horse battery',
      role,
      projectId: 'default',
    });
    const t = await platform.accounts.createApiToken({
      userId: u.id,
      projectId: 'default',
      name: `${name} token`,
      role,
      scopes: ['mcp'],
    });
    return { id: u.id, token: t.token };
  }

  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'via-mcp-stdio-'));
    platform = await createPlatform(
      loadConfig({ DATA_DIR: dir, LOG_LEVEL: 'silent', DEMO_DATASET: 'false' }, dir),
      silentLogger(),
    );
    await platform.prepare();
    tokens.operator = (await user('olga', 'operator')).token;
    await user('vera', 'viewer');
    await writeTree(path.join(dir, 'imports', 'src'), {
      'data.yaml': 'names: [helmet]\n',
      'images/train/a.jpg': await jpeg(64, 48, 7),
      'labels/train/a.txt': '0 0.5 0.5 0.2 0.2\n',
    });
  }, 30_000);

  afterAll(async () => {
    for (const c of clients) await c.close().catch(() => undefined);
    await platform?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('without a token, in the embedded default, acts as the local admin and says so on stderr only', async () => {
    const { client, stderr, errors } = await connect();
    const { tools } = await client.listTools();
    expect(tools.map((t) => t.name)).toEqual(
      expect.arrayContaining(['list_datasets', 'import_dataset', 'approvals_wait', 'ask_assistant']),
    );
    const asked = (await client.callTool({
      name: 'ask_assistant',
      arguments: { message: 'list datasets' },
    })) as CallToolResult;
    expect(asked.structuredContent).toMatchObject({ status: 'done', plan: [{ tool: 'list_datasets' }] });
    const listed = (await client.callTool({ name: 'list_datasets', arguments: {} })) as CallToolResult;
    expect(listed.isError).toBeFalsy();
    expect(stderr()).toMatch(/LOCAL ADMIN/);
    // Even the local admin gets no way around approval: without elicitation the call only waits.
    const pending = (await client.callTool({
      name: 'import_dataset',
      arguments: { source: path.join(dir, 'imports', 'src'), name: 'by-admin' },
    })) as CallToolResult;
    expect(pending.isError).toBe(true);
    expect(pending._meta?.['visioninapp/approval']).toMatchObject({
      tool: 'import_dataset',
      status: 'pending',
    });
    expect(errors).toEqual([]);
  }, 60_000);

  it('with an operator token, a write tool waits for an approval given in another process, then runs once', async () => {
    const { client, stderr } = await connect(tokens.operator);
    expect(stderr()).toMatch(/as olga@example\.test \(operator\)/);
    const first = (await client.callTool({
      name: 'import_dataset',
      arguments: { source: path.join(dir, 'imports', 'src'), name: 'via-stdio' },
    })) as CallToolResult;
    const { approvalId } = first._meta?.['visioninapp/approval'] as { approvalId: string };
    const waiting = client.callTool({
      name: 'approvals_wait',
      arguments: { approvalId, timeoutSeconds: 30 },
    });
    await platform.approvals.decide(ctxOf('boss', 'approver'), approvalId, {
      decision: 'approve',
      reason: 'ok',
    });
    const done = (await waiting) as CallToolResult;
    expect(done.structuredContent).toMatchObject({
      status: 'executed',
      decidedBy: 'boss (approver)',
      output: { ref: 'via-stdio@1' },
    });
    expect((await platform.datasets.get(ctxOf('boss', 'approver'), 'via-stdio')).version).toBe(1);
  }, 60_000);

  it('a viewer token (made with visioninapp mcp-token) cannot run write tools; an unknown token is refused at start', async () => {
    const env = { ...process.env, DATA_DIR: dir, LOG_LEVEL: 'warn' };
    const made = await promisify(execFile)(
      process.execPath,
      [BIN, 'mcp-token', '--email', 'vera@example.test', '--role', 'viewer', '--days', '1'],
      { env, cwd: dir },
    );
    const viewerToken = made.stdout.trim();
    expect(viewerToken).toMatch(/^via_tok_/);
    expect(made.stderr).toMatch(/for vera@example\.test \(viewer\).*shown only once/);
    const { client } = await connect(viewerToken);
    const refused = (await client.callTool({
      name: 'import_dataset',
      arguments: { source: path.join(dir, 'imports', 'src'), name: 'nope' },
    })) as CallToolResult;
    expect(refused.isError).toBe(true);
    expect(refused.content[0]).toMatchObject({ text: expect.stringMatching(/^forbidden: /) });

    const { transport, stderr } = spawnServer('via_tok_bogus_' + 'a'.repeat(64));
    const client2 = new Client({ name: 'vitest-stdio', version: '1.0.0' });
    clients.push(client2);
    await expect(client2.connect(transport)).rejects.toThrow();
    await expect.poll(stderr, { timeout: 20_000 }).toMatch(/unknown API token/);
  }, 60_000);
});
