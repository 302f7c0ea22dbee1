import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js';
import {
  ElicitRequestSchema,
  type CallToolResult,
  type ElicitRequest,
  type ElicitResult,
} from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RulesPlanner } from '../agent/rules-planner.js';
import { mcpServicesOf } from '../app/wiring.js';
import { startEvalPlatform, type EvalPlatform } from '../evals/real-platform.js';
import { createMcpServer, type McpSession } from './server.js';

type Form = Extract<ElicitRequest['params'], { requestedSchema: unknown }>;

describe('ask_assistant: a clarifying question with choices', () => {
  let env: EvalPlatform;
  const sessions: McpSession[] = [];

  /** A real SDK client over the in-memory transport; with `answer`, it declares form elicitation and answers with it. */
  async function connect(answer?: (req: Form) => ElicitResult): Promise<Client> {
    const session = createMcpServer({
      services: mcpServicesOf(env.platform),
      principal: { userId: 'olga', email: 'olga@example.test', name: 'olga', role: 'operator', kind: 'user' },
      projectId: 'default',
    });
    sessions.push(session);
    const [a, b] = InMemoryTransport.createLinkedPair();
    await session.server.connect(a);
    const client = new Client(
      { name: 'in-memory', version: '1.0.0' },
      answer ? { capabilities: { elicitation: { form: {} } } } : {},
    );
    if (answer) client.setRequestHandler(ElicitRequestSchema, (req) => answer(req.params as Form));
    await client.connect(b);
    return client;
  }

  const ask = async (client: Client, message: string) =>
    (await client.callTool({ name: 'ask_assistant', arguments: { message } })) as CallToolResult;

  const enumOf = (req: Form) =>
    (req.requestedSchema.properties.choice as { enum?: string[] } | undefined)?.enum ?? [];

  beforeAll(async () => {
    env = await startEvalPlatform(async () => new RulesPlanner());
  }, 60_000);

  afterAll(async () => {
    for (const s of sessions) await s.close();
    await env?.close();
  });

  it('asks with an enum of model versions, then of device tags, and plans what was picked', async () => {
    const asked: Form[] = [];
    const client = await connect((req) => {
      asked.push(req);
      const options = enumOf(req);
      const pick =
        options.find((o) => o.startsWith('helmets@3')) ?? options.find((o) => o.startsWith('line-3'));
      return pick ? { action: 'accept', content: { choice: pick } } : { action: 'cancel' };
    });
    const result = await ask(client, 'deploy it');
    expect(result.isError).toBeFalsy();
    expect(asked).toHaveLength(2);
    expect(asked[0]!.message).toMatch(/Which model version/);
    expect(enumOf(asked[0]!)).toEqual(
      expect.arrayContaining([expect.stringMatching(/^helmets@2 \(production\)$/)]),
    );
    expect(enumOf(asked[0]!)).toHaveLength(3);
    expect(asked[1]!.message).toMatch(/Where should I deploy it/);
    expect(enumOf(asked[1]!)).toEqual(expect.arrayContaining(['line-3 (2 devices)', 'line-2 (1 device)']));
    const helmets3 = (await env.platform.models.list(env.ctx('olga', 'viewer'), { limit: 10 })).find(
      (v) => v.ref === 'helmets@3',
    );
    // The operator cannot approve a rollout, so the plan waits for an approver: nothing ran.
    expect(result.structuredContent).toMatchObject({
      status: 'awaiting_approval',
      plan: [{ tool: 'start_rollout', args: { modelVersion: helmets3!.id, target: { tag: 'line-3' } } }],
      pendingApproval: { tool: 'start_rollout' },
    });
  }, 30_000);

  it('asks which dataset for "train and deploy", and a decline leaves the question and its choices as text', async () => {
    const asked: Form[] = [];
    const client = await connect((req) => {
      asked.push(req);
      return { action: 'decline' };
    });
    const result = await ask(client, 'train a model and deploy it');
    expect(asked).toHaveLength(1);
    expect(enumOf(asked[0]!)).toEqual(['helmets-demo', 'helmets-v2', 'ship-hulls']);
    expect(result.structuredContent).toMatchObject({ status: 'clarify', plan: [] });
  }, 30_000);

  it('returns the choices as text and structured content to a client without elicitation', async () => {
    const client = await connect();
    const result = await ask(client, 'deploy it');
    const out = result.structuredContent as {
      status: string;
      reply: string;
      choices: Array<{ label: string; message: string }>;
    };
    expect(out.status).toBe('clarify');
    expect(out.choices.map((c) => c.label)).toEqual(
      expect.arrayContaining(['helmets@2 (production)', expect.stringMatching(/^helmets@3/)]),
    );
    expect(out.reply).toMatch(/Which model version/);
    for (const c of out.choices) expect(out.reply).toContain(`${c.label}: "${c.message}"`);
    // Sending a choice's message in the same conversation fills the slot.
    const next = (await client.callTool({
      name: 'ask_assistant',
      arguments: {
        message: out.choices.find((c) => c.label.startsWith('helmets@3'))!.message,
        threadId: (result.structuredContent as { threadId: string }).threadId,
      },
    })) as CallToolResult;
    expect(next.structuredContent).toMatchObject({
      status: 'clarify',
      reply: expect.stringMatching(/Where should I deploy it/),
    });
  }, 30_000);
});
