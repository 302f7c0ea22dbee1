import http from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import {
  ElicitRequestSchema,
  ResourceUpdatedNotificationSchema,
  type CallToolResult,
  type ElicitRequest,
  type ElicitResult,
} from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../app/config.js';
import { jpeg, writeTree } from '../services/datasets/datasets.fixtures.js';
import { silentLogger } from '../core/log.js';
import { createPlatform, type Platform } from '../app/platform.js';
import type { Role } from '../core/context.js';
import { startHttpServer, type RunningServer } from '../app/http.js';

type Answer = (req: ElicitRequest['params']) => ElicitResult;

describe('MCP over Streamable HTTP (real express app)', () => {
  let dir: string;
  let platform: Platform;
  let server: RunningServer;
  let url: URL;
  const tokens: Record<string, string> = {};
  const clients: Client[] = [];

  async function user(name: string, role: Role, scopes = ['mcp']): Promise<string> {
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
      scopes,
    });
    return t.token;
  }

  async function connect(token: string, answer?: Answer): Promise<Client> {
    const client = new Client(
      { name: 'vitest-client', version: '1.0.0' },
      answer ? { capabilities: { elicitation: { form: {} } } } : {},
    );
    if (answer) client.setRequestHandler(ElicitRequestSchema, (req) => answer(req.params));
    await client.connect(
      new StreamableHTTPClientTransport(url, {
        requestInit: { headers: { Authorization: `Bearer ${token}` } },
      }),
    );
    clients.push(client);
    return client;
  }

  function text(result: CallToolResult): string {
    return result.content.map((c) => (c.type === 'text' ? c.text : '')).join('\n');
  }

  async function trail(tool: string): Promise<string[]> {
    const { entries } = await platform.audit.query({ projectId: 'default', tool, order: 'asc', limit: 100 });
    return entries.map((e) => `${e.action}@${e.actor.id}`);
  }

  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'via-mcp-http-'));
    const config = loadConfig(
      {
        DATA_DIR: dir,
        LOG_LEVEL: 'silent',
        DEMO_DATASET: 'false',
        SIMULATED_DEVICES: '0',
        EMBEDDED_GPU_RUNNER: 'false',
      },
      dir,
    );
    platform = await createPlatform(config, silentLogger());
    await platform.prepare();
    server = await startHttpServer(platform, { port: 0, host: '127.0.0.1' });
    url = new URL(`${server.url}/mcp`);
    tokens.operator = await user('olivia', 'operator');
    tokens.operator2 = await user('oscar', 'operator');
    tokens.approver = await user('april', 'approver', ['api']);
    tokens.viewer = await user('victor', 'viewer');
    tokens.apiOnly = await user('andy', 'operator', ['api']);
    const src = path.join(dir, 'imports', 'src');
    await writeTree(src, {
      'data.yaml': 'names: [helmet, head]\n',
      'images/train/a.jpg': await jpeg(64, 48, 1),
      'labels/train/a.txt': '0 0.5 0.5 0.2 0.2\n',
      'images/train/b.jpg': await jpeg(64, 48, 2),
      'labels/train/b.txt': '1 0.4 0.4 0.2 0.2\n',
      'images/val/c.jpg': await jpeg(64, 48, 3),
      'labels/val/c.txt': '0 0.3 0.3 0.1 0.1\n',
    });
  }, 60_000);

  afterAll(async () => {
    for (const c of clients) await c.close().catch(() => undefined);
    await server?.close();
    await platform?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('refuses a missing, unknown, expired or revoked token and a token without the mcp scope', async () => {
    await expect(connect('')).rejects.toThrow();
    await expect(connect('via_tok_nope_' + '0'.repeat(64))).rejects.toThrow(/401|token/i);
    await expect(connect(tokens.apiOnly!)).rejects.toThrow(/lacks the .{0,4}mcp.{0,4} scope/);

    const expired = await user('eve', 'operator');
    const id = /^via_([a-z]+_[a-z0-9]+)_/.exec(expired)![1]!;
    const client = await connect(expired);
    await platform.infra.db.kysely
      .updateTable('api_tokens')
      .set({ expires_at: Date.now() - 1000 })
      .where('id', '=', id)
      .execute();
    // The expiry is checked on every request of an open session, not only at initialize.
    await expect(client.listTools()).rejects.toThrow(/expired|401/);
    await expect(connect(expired)).rejects.toThrow(/expired|401/);
  });

  it('rejects a foreign Host or Origin (DNS rebinding)', async () => {
    const status = (headers: Record<string, string>) =>
      new Promise<number>((resolve, reject) => {
        const req = http.request(
          url,
          {
            method: 'POST',
            headers: {
              'content-type': 'application/json',
              authorization: `Bearer ${tokens.operator}`,
              ...headers,
            },
          },
          (res) => {
            res.resume();
            resolve(res.statusCode ?? 0);
          },
        );
        req.on('error', reject);
        req.end(
          JSON.stringify({
            jsonrpc: '2.0',
            id: 1,
            method: 'initialize',
            params: {
              protocolVersion: '2025-06-18',
              capabilities: {},
              clientInfo: { name: 'x', version: '1' },
            },
          }),
        );
      });
    expect(await status({ host: `evil.example:${url.port}` })).toBe(403);
    expect(await status({ origin: 'http://evil.example' })).toBe(403);
    expect(
      await status({ origin: `http://localhost:${url.port}`, accept: 'application/json, text/event-stream' }),
    ).toBe(200);
  });

  it('lists registry tools with schemas and risk annotations, and calls a read tool', async () => {
    const client = await connect(tokens.operator!);
    const { tools } = await client.listTools();
    const byName = new Map(tools.map((t) => [t.name, t]));
    expect([...byName.keys()]).toEqual(
      expect.arrayContaining([
        'list_datasets',
        'import_dataset',
        'split_dataset',
        'decide_approval',
        'approvals_wait',
        'ask_assistant',
      ]),
    );
    expect(byName.get('list_datasets')!.annotations).toMatchObject({
      readOnlyHint: true,
      destructiveHint: false,
      idempotentHint: true,
    });
    expect(byName.get('import_dataset')!.annotations).toMatchObject({
      readOnlyHint: false,
      destructiveHint: false,
      idempotentHint: false,
    });
    expect(byName.get('import_dataset')!.inputSchema.properties).toHaveProperty('source');
    expect(byName.get('import_dataset')!.outputSchema?.properties).toHaveProperty('ref');
    expect(byName.get('import_dataset')!.description).toMatch(/pending approval/);

    const listed = (await client.callTool({ name: 'list_datasets', arguments: {} })) as CallToolResult;
    expect(listed.isError).toBeFalsy();
    expect(listed.structuredContent).toMatchObject({ datasets: [] });

    const bad = (await client.callTool({
      name: 'describe_dataset',
      arguments: { dataset: 'helmets-v3' },
    })) as CallToolResult;
    expect(bad.isError).toBe(true);
    expect(text(bad)).toMatch(/not_found: dataset "helmets-v3" not found/);
  });

  it('a write tool returns "pending approval", waits through approvals_wait with progress, and runs once after an approval given elsewhere', async () => {
    const client = await connect(tokens.operator!);
    const args = { source: path.join(dir, 'imports', 'src'), name: 'tiny', format: 'yolo' };
    const first = (await client.callTool({ name: 'import_dataset', arguments: args })) as CallToolResult;
    expect(first.isError).toBe(true);
    expect(text(first)).toMatch(/^pending approval: import_dataset \(write\) has not run/);
    const info = first._meta?.['visioninapp/approval'] as {
      approvalId: string;
      whoMayApprove: string;
      where: string[];
      args: unknown;
    };
    expect(info.approvalId).toMatch(/^apr_/);
    expect(info.args).toEqual(args);
    expect(info.where.join(' ')).toMatch(/Slack/);
    await expect(
      platform.datasets.get(
        {
          user: { userId: 'x', email: 'x@x', name: 'x', role: 'admin', kind: 'system' },
          projectId: 'default',
          requestId: 'r',
          log: silentLogger(),
        },
        'tiny',
      ),
    ).rejects.toMatchObject({ code: 'not_found' });

    const progress: string[] = [];
    const waiting = client.callTool(
      { name: 'approvals_wait', arguments: { approvalId: info.approvalId, timeoutSeconds: 30 } },
      undefined,
      {
        onprogress: (p) => progress.push(p.message ?? ''),
      },
    );
    await new Promise((r) => setTimeout(r, 1500));
    // Another person approves on another channel (the web API and the Slack bot call the same ApprovalService).
    const april = await platform.accounts.authenticateToken(tokens.approver!);
    await platform.approvals.decide(
      { user: april, projectId: 'default', requestId: 'web-1', log: silentLogger() },
      info.approvalId,
      { decision: 'approve', reason: 'looks right' },
    );
    const done = (await waiting) as CallToolResult;
    expect(done.isError).toBeFalsy();
    expect(done.structuredContent).toMatchObject({
      status: 'executed',
      decidedBy: 'april (approver)',
      output: { ref: 'tiny@1', images: 3 },
    });
    expect(progress.some((m) => m.includes(`waiting for approval ${info.approvalId}`))).toBe(true);

    // Exactly once: waiting again returns the recorded output and runs nothing.
    const again = (await client.callTool({
      name: 'approvals_wait',
      arguments: { approvalId: info.approvalId, timeoutSeconds: 1 },
    })) as CallToolResult;
    expect(again.structuredContent).toMatchObject({ status: 'executed', output: { ref: 'tiny@1' } });
    expect(await trail('import_dataset')).toEqual([
      expect.stringMatching(/^approval\.requested@/),
      expect.stringMatching(/^approval\.decided@/),
      expect.stringMatching(/^approval\.consumed@/),
      expect.stringMatching(/^tool\.started@/),
      expect.stringMatching(/^tool\.finished@/),
      // waiting again is settled from the step's execution record: nothing is consumed, refused or run
    ]);
  }, 30_000);

  it('asks through elicitation with the exact arguments and runs on accept; a decline rejects and runs nothing', async () => {
    const asked: ElicitRequest['params'][] = [];
    const approve = await connect(tokens.operator2!, (req) => {
      asked.push(req);
      return { action: 'accept', content: { decision: 'approve', reason: 'ok from my IDE' } };
    });
    const result = (await approve.callTool({
      name: 'split_dataset',
      arguments: { dataset: 'tiny', train: 0.5, val: 0.25, test: 0.25 },
    })) as CallToolResult;
    expect(result.isError).toBeFalsy();
    expect(result.structuredContent).toMatchObject({ ref: 'tiny@2' });
    expect(asked).toHaveLength(1);
    expect(asked[0]!.message).toContain('"dataset": "tiny"');
    expect(asked[0]!.message).toContain('"train": 0.5');
    const decided = (
      await platform.audit.query({
        projectId: 'default',
        tool: 'split_dataset',
        action: 'approval.decided',
        limit: 5,
      })
    ).entries;
    expect(decided[0]!.data).toMatchObject({
      decision: 'approve',
      reason: 'ok from my IDE',
      role: 'operator',
    });

    const decline = await connect(tokens.operator2!, () => ({ action: 'decline' }));
    const refused = (await decline.callTool({
      name: 'split_dataset',
      arguments: { dataset: 'tiny', train: 0.6, val: 0.2, test: 0.2 },
    })) as CallToolResult;
    expect(refused.isError).toBe(true);
    expect(text(refused)).toMatch(/rejected/);
    const versions = await platform.datasets.listVersions(
      {
        user: { userId: 'x', email: 'x@x', name: 'x', role: 'admin', kind: 'system' },
        projectId: 'default',
        requestId: 'r',
        log: silentLogger(),
      },
      'tiny',
    );
    expect(versions).toHaveLength(2);
  }, 30_000);

  it("forwards a long tool's progress and honours cancellation (an aborted wait runs nothing)", async () => {
    const client = await connect(tokens.operator2!, () => ({
      action: 'accept',
      content: { decision: 'approve' },
    }));
    const progress: Array<{ progress: number; message?: string }> = [];
    const imported = (await client.callTool(
      {
        name: 'import_dataset',
        arguments: { source: path.join(dir, 'imports', 'src'), name: 'tiny-progress' },
      },
      undefined,
      {
        onprogress: (p) => progress.push(p),
      },
    )) as CallToolResult;
    expect(imported.structuredContent).toMatchObject({ ref: 'tiny-progress@1' });
    expect(progress.length).toBeGreaterThan(0);
    expect(progress.map((p) => p.progress)).toEqual(
      [...progress.map((p) => p.progress)].sort((a, b) => a - b),
    );

    const plain = await connect(tokens.operator2!);
    const pending = (await plain.callTool({
      name: 'split_dataset',
      arguments: { dataset: 'tiny-progress', train: 1, val: 0, test: 0 },
    })) as CallToolResult;
    const { approvalId } = pending._meta?.['visioninapp/approval'] as { approvalId: string };
    const abort = new AbortController();
    const waiting = plain.callTool(
      { name: 'approvals_wait', arguments: { approvalId, timeoutSeconds: 30 } },
      undefined,
      { signal: abort.signal },
    );
    setTimeout(() => abort.abort('changed my mind'), 300);
    await expect(waiting).rejects.toThrow();
    // The cancellation notification travels on its own request; the decision comes after it arrived.
    await new Promise((r) => setTimeout(r, 500));
    const april = await platform.accounts.authenticateToken(tokens.approver!);
    await platform.approvals.decide(
      { user: april, projectId: 'default', requestId: 'web-2', log: silentLogger() },
      approvalId,
      { decision: 'approve' },
    );
    await new Promise((r) => setTimeout(r, 1500));
    const after = await platform.approvals.get(
      { user: april, projectId: 'default', requestId: 'web-3', log: silentLogger() },
      approvalId,
    );
    expect(after.status).toBe('approved');
  }, 30_000);

  it('a viewer reads but cannot run write tools, and no approval request is created', async () => {
    const client = await connect(tokens.viewer!, () => ({
      action: 'accept',
      content: { decision: 'approve' },
    }));
    const listed = (await client.callTool({ name: 'list_datasets', arguments: {} })) as CallToolResult;
    expect(listed.structuredContent).toMatchObject({
      datasets: expect.arrayContaining([expect.objectContaining({ name: 'tiny' })]),
    });
    const before = (
      await platform.audit.query({ projectId: 'default', action: 'approval.requested', limit: 1 })
    ).total;
    const refused = (await client.callTool({
      name: 'split_dataset',
      arguments: { dataset: 'tiny', train: 1, val: 0, test: 0 },
    })) as CallToolResult;
    expect(refused.isError).toBe(true);
    expect(text(refused)).toMatch(/^forbidden: split_dataset changes things and needs the operator role/);
    expect(
      (await platform.audit.query({ projectId: 'default', action: 'approval.requested', limit: 1 })).total,
    ).toBe(before);
  });

  it('serves resources by URI template and sends updates for a subscribed job', async () => {
    const client = await connect(tokens.viewer!);
    const templates = (await client.listResourceTemplates()).resourceTemplates.map((t) => t.uriTemplate);
    expect(templates).toContain('visioninapp://datasets/{name}');
    const { resources } = await client.listResources();
    expect(resources.map((r) => r.uri)).toContain('visioninapp://datasets/tiny');
    const read = await client.readResource({ uri: 'visioninapp://datasets/tiny' });
    const body = JSON.parse((read.contents[0] as { text: string }).text) as { name: string; version: number };
    expect(body).toMatchObject({ name: 'tiny', version: 2 });
    await expect(client.readResource({ uri: 'visioninapp://datasets/nope' })).rejects.toThrow(
      /dataset "nope" not found/,
    );

    const updates: string[] = [];
    client.setNotificationHandler(ResourceUpdatedNotificationSchema, (n) => {
      updates.push(n.params.uri);
    });
    await expect(client.subscribeResource({ uri: 'visioninapp://datasets/tiny' })).rejects.toThrow(
      /only running jobs and rollouts/,
    );
    await client.subscribeResource({ uri: 'visioninapp://jobs/job_1' });
    for (let i = 0; i < 5; i++)
      platform.events.emit({
        type: 'training.metrics',
        projectId: 'default',
        at: Date.now(),
        jobId: 'job_1',
        epoch: i,
      } as never);
    platform.events.emit({
      type: 'training.metrics',
      projectId: 'other',
      at: Date.now(),
      jobId: 'job_1',
    } as never);
    platform.events.emit({
      type: 'training.metrics',
      projectId: 'default',
      at: Date.now(),
      jobId: 'job_2',
    } as never);
    await expect.poll(() => updates, { timeout: 3000 }).toEqual(['visioninapp://jobs/job_1']);
    await client.unsubscribeResource({ uri: 'visioninapp://jobs/job_1' });
    platform.events.emit({
      type: 'rollout.progress',
      projectId: 'default',
      at: Date.now(),
      rolloutId: 'ro_1',
    } as never);
    platform.events.emit({
      type: 'training.finished',
      projectId: 'default',
      at: Date.now(),
      job: { id: 'job_1' },
    } as never);
    await new Promise((r) => setTimeout(r, 400));
    expect(updates).toHaveLength(1);

    const prompts = (await client.listPrompts()).prompts.map((p) => p.name);
    expect(prompts).toEqual(expect.arrayContaining(['train-and-deploy', 'investigate-line']));
    const prompt = await client.getPrompt({
      name: 'train-and-deploy',
      arguments: { dataset: 'helmets-v2', target: 'line-3' },
    });
    expect((prompt.messages[0]!.content as { text: string }).text).toMatch(/helmets-v2.*line-3/s);
  });

  it('searches datasets, starts a training run that waits for approval, and follows the job through its resource', async () => {
    const client = await connect(tokens.operator!);
    // search_datasets asks the search index; this platform runs no indexer loop, so build it now
    await platform.reindex();
    const found = (await client.callTool({
      name: 'search_datasets',
      arguments: { text: 'helmet' },
    })) as CallToolResult;
    expect(found.isError).toBeFalsy();
    expect(text(found)).toContain('tiny');

    const started = (await client.callTool({
      name: 'start_training',
      arguments: { dataset: 'tiny', epochs: 2 },
    })) as CallToolResult;
    const { approvalId } = started._meta?.['visioninapp/approval'] as { approvalId: string };
    const april = await platform.accounts.authenticateToken(tokens.approver!);
    await platform.approvals.decide(
      { user: april, projectId: 'default', requestId: 'web-4', log: silentLogger() },
      approvalId,
      { decision: 'approve' },
    );
    const ran = (await client.callTool({
      name: 'approvals_wait',
      arguments: { approvalId, timeoutSeconds: 10 },
    })) as CallToolResult;
    const jobId = (ran.structuredContent as { output: { jobId: string } }).output.jobId;
    expect(ran.structuredContent).toMatchObject({
      status: 'executed',
      output: { jobId: expect.stringMatching(/^job_/), status: 'queued', dataset: 'tiny@2' },
    });

    const uri = `visioninapp://jobs/${jobId}`;
    const job = JSON.parse(((await client.readResource({ uri })).contents[0] as { text: string }).text) as {
      job: { status: string };
      metrics: unknown[];
    };
    expect(job).toMatchObject({ job: { status: 'queued' }, metrics: [] });
    const updates: string[] = [];
    client.setNotificationHandler(ResourceUpdatedNotificationSchema, (n) => {
      updates.push(n.params.uri);
    });
    await client.subscribeResource({ uri });
    // Cancelling (approved in an elicitation-capable client) ends the job; the subscriber hears it from the domain event.
    const other = await connect(tokens.operator!, () => ({
      action: 'accept',
      content: { decision: 'approve' },
    }));
    const cancelled = (await other.callTool({
      name: 'cancel_training',
      arguments: { jobId, reason: 'test' },
    })) as CallToolResult;
    expect(cancelled.structuredContent).toMatchObject({ status: 'cancelled' });
    await expect.poll(() => updates, { timeout: 3000 }).toContain(uri);
  }, 30_000);

  it('ask_assistant plans a request and asks for the approval of its write step through elicitation', async () => {
    const asked: string[] = [];
    const client = await connect(tokens.operator!, (req) => {
      asked.push(req.message);
      return { action: 'accept', content: { decision: 'approve' } };
    });
    const read = (await client.callTool({
      name: 'ask_assistant',
      arguments: { message: 'list datasets' },
    })) as CallToolResult;
    expect(read.isError).toBeFalsy();
    expect(read.structuredContent).toMatchObject({ status: 'done', plan: [{ tool: 'list_datasets' }] });

    const write = (await client.callTool({
      name: 'ask_assistant',
      arguments: { message: 'export dataset tiny in yolo format' },
    })) as CallToolResult;
    expect(write.isError).toBeFalsy();
    expect(asked).toHaveLength(1);
    expect(asked[0]).toMatch(/export_dataset/);
    expect(write.structuredContent).toMatchObject({
      status: 'done',
      plan: [{ tool: 'export_dataset' }],
      steps: [{ tool: 'export_dataset', state: 'done' }],
    });

    // Without elicitation the plan comes back with the pending approval id and where to approve it.
    const plain = await connect(tokens.operator!);
    const pending = (await plain.callTool({
      name: 'ask_assistant',
      arguments: { message: 'export dataset tiny in coco format' },
    })) as CallToolResult;
    expect(pending.structuredContent).toMatchObject({
      status: 'awaiting_approval',
      pendingApproval: { tool: 'export_dataset', approvalId: expect.stringMatching(/^apr_/) },
    });
  }, 30_000);
});
