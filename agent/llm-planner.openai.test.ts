import { afterEach, describe, expect, it } from 'vitest';
import { createAgentHarness, type AgentHarness } from '../evals/harness.js';
import {
  startScriptedOpenAiServer,
  type ScriptedOpenAiServer,
  type ServerScript,
} from '../evals/scripted-openai-server.js';
import { SimPlatform } from '../evals/sim-platform.js';
import { ToolRegistry } from '../tools/registry.js';
import { chatModelFromEnv, LlmPlanner } from './llm-planner.js';

// The LLM planner through the real @langchain/openai client against a local OpenAI-compatible server.
describe('LlmPlanner over the OpenAI wire (scripted local server)', () => {
  let server: ScriptedOpenAiServer | undefined;
  let h: AgentHarness | undefined;
  const fetched: string[] = [];
  const realFetch = globalThis.fetch;

  async function setup(script: ServerScript, env: { LLM_TIMEOUT_S?: number; LLM_MAX_RETRIES?: number } = {}) {
    server = await startScriptedOpenAiServer(script);
    globalThis.fetch = (async (input: Parameters<typeof fetch>[0], init?: Parameters<typeof fetch>[1]) => {
      fetched.push(typeof input === 'string' ? input : input instanceof URL ? input.href : input.url);
      return realFetch(input, init);
    }) as typeof fetch;
    const model = await chatModelFromEnv({
      OPENAI_API_KEY: 'local-key',
      OPENAI_BASE_URL: server.url,
      LLM_MODEL: 'scripted-7b',
      ...env,
    });
    const sim = new SimPlatform();
    h = await createAgentHarness({
      sim,
      planner: new LlmPlanner({ model: model!, registry: new ToolRegistry(sim.tools()) }),
    });
    return h;
  }

  afterEach(async () => {
    globalThis.fetch = realFetch;
    fetched.length = 0;
    await h?.close();
    await server?.close();
    h = undefined;
    server = undefined;
  });

  it('sends the tool schemas, streams the answer and turns tool calls into a plan, with nothing fetched but the local server', async () => {
    const env = await setup(() => ({
      content: 'Training on helmets-v2, then deploying to line-3.',
      toolCalls: [
        { name: 'start_training', arguments: { dataset: 'helmets-v2', epochs: 5 } },
        {
          name: 'start_rollout',
          arguments: { modelVersion: '$steps.0.result.modelVersionId', target: { tag: 'line-3' } },
        },
      ],
    }));
    const started = Date.now();
    const view = await env.runtime.startConversation(env.ctx('alice', 'operator'), {
      message: 'train helmets-v2 for 5 epochs and deploy to line 3',
    });
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(view.plan?.steps.map((s) => [s.tool, s.args])).toEqual([
      ['start_training', { dataset: 'helmets-v2', epochs: 5 }],
      ['start_rollout', { modelVersion: '$steps.0.result.modelVersionId', target: { tag: 'line-3' } }],
    ]);
    expect(view.pendingApproval?.tool).toBe('start_training');
    const req = server!.requests[0]!;
    expect(req).toMatchObject({ model: 'scripted-7b', stream: true, temperature: 0 });
    expect(req.messages.map((m) => m.role)).toEqual(['system', 'user']);
    const training = req.tools?.find((t) => t.function.name === 'start_training');
    expect(training?.function.parameters).toMatchObject({
      type: 'object',
      properties: { dataset: { type: 'string' }, epochs: { type: 'integer' } },
      required: ['dataset'],
    });
    expect(req.tools?.map((t) => t.function.name)).toContain('ask_clarifying_question');
    // The stock client downloads tiktoken tables from the internet; the planner must not.
    expect(fetched.filter((u) => !u.startsWith(server!.url))).toEqual([]);
  });

  it('retries a failed request and gives up on a slow server after its timeout', async () => {
    const flaky = await setup(
      (_req, n) => (n === 1 ? { status: 500 } : { toolCalls: [{ name: 'list_datasets', arguments: {} }] }),
      { LLM_MAX_RETRIES: 2, LLM_TIMEOUT_S: 5 },
    );
    const view = await flaky.runtime.startConversation(flaky.ctx('alice', 'operator'), {
      message: 'list datasets',
    });
    expect(view.plan?.steps.map((s) => s.tool)).toEqual(['list_datasets']);
    expect(server!.requests).toHaveLength(2);
    await h!.close();
    await server!.close();
    h = undefined;

    const slow = await setup(() => ({ delayMs: 3_000, content: 'too late' }), {
      LLM_MAX_RETRIES: 0,
      LLM_TIMEOUT_S: 0.3,
    });
    const started = Date.now();
    const view2 = await slow.runtime.startConversation(slow.ctx('alice', 'operator'), {
      message: 'list datasets',
    });
    expect(Date.now() - started).toBeLessThan(2_500);
    expect(view2.plan?.steps).toEqual([]);
    expect(view2.report).toBe(
      'I could not plan this: the language model did not answer (Request timed out); nothing was planned. Check OPENAI_BASE_URL, or raise LLM_TIMEOUT_S or LLM_MAX_RETRIES',
    );
  });

  it('refuses malformed tool calls: an unknown tool, arguments that are not JSON, a dataset that does not exist', async () => {
    const env = await setup((req) => {
      const text = String(req.messages.at(-1)?.content ?? '');
      if (text.includes('unknown')) return { toolCalls: [{ name: 'deploy_everything', arguments: {} }] };
      if (text.includes('broken'))
        return { toolCalls: [{ name: 'start_training', arguments: '{"dataset": "helmets-v2", "epochs": ' }] };
      return { toolCalls: [{ name: 'start_training', arguments: { dataset: 'forklifts-v1' } }] };
    });
    const alice = env.ctx('alice', 'operator');
    const unknown = await env.runtime.startConversation(alice, { message: 'unknown thing' });
    expect(unknown.plan?.steps).toEqual([]);
    expect(unknown.report).toMatch(
      /^The language model asked for a tool that does not exist \("deploy_everything"\); nothing was planned\. Tools I have: list_datasets, /,
    );
    const broken = await env.runtime.startConversation(alice, { message: 'broken request' });
    expect(broken.plan?.steps).toEqual([]);
    expect(broken.report).toMatch(
      /^The language model returned a tool call I could not read \(start_training: .+\); nothing was planned\. Please ask again\.$/,
    );
    const invented = await env.runtime.startConversation(alice, { message: 'train forklifts' });
    expect(invented.report).toBe(
      'dataset "forklifts-v1" not found; known datasets: helmets-demo, helmets-v2',
    );
    expect(env.sim.calls).toEqual([]);
  });

  it('passes a refusal on, and keeps a question from planning a change whatever the model says', async () => {
    const env = await setup((req) => {
      const text = String(req.messages.at(-1)?.content ?? '');
      if (text.includes('weapons')) return { content: 'I cannot help with that.' };
      if (text.includes('silent')) return { refusal: 'I cannot help with that.' };
      return {
        toolCalls: [
          { name: 'start_rollout', arguments: { modelVersion: 'mv_helmets_3', target: { tag: 'line-3' } } },
        ],
      };
    });
    const alice = env.ctx('alice', 'operator');
    const refused = await env.runtime.startConversation(alice, { message: 'design weapons' });
    expect(refused.report).toBe('I cannot help with that.');
    const silent = await env.runtime.startConversation(alice, { message: 'silent refusal' });
    expect(silent.plan?.steps).toEqual([]);
    expect(silent.report).toBe(
      'The language model gave no answer and planned nothing; please rephrase the request.',
    );
    const question = await env.runtime.startConversation(alice, { message: 'which model runs on line 3?' });
    expect(question.plan?.steps).toEqual([]);
    expect(question.pendingApproval).toBeNull();
    expect(question.report).toMatch(/^That reads as a question, so I changed nothing/);
  });
});
