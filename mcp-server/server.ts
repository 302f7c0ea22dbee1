import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { z } from 'zod';
import type { AgentEvent } from '../agent/events.js';
import type { ThreadView } from '../agent/runtime.js';
import type { ApprovalRequest } from '../services/approvals/index.js';
import type { Principal } from '../core/context.js';
import { newId } from '../core/ids.js';
import type { AnyTool } from '../tools/define.js';
import { runTool } from '../tools/run-tool.js';
import { canElicit, elicitDecision, gatedCall, registerApprovalsWait, whereToApprove } from './approvals.js';
import {
  callContextOf,
  guarded,
  okResult,
  progressReporter,
  resultOf,
  toolContextOf,
  type McpCaller,
  type McpExtra,
} from './call.js';
import { canElicitForm, clarifyText, elicitChoice } from './clarify.js';
import { registerPrompts } from './prompts.js';
import { registerResources } from './resources.js';
import type { McpServices } from './services.js';

/** Name and version the server announces in `initialize`. */
export const SERVER_INFO = { name: 'visioninapp', title: 'VisionInApp', version: '0.1.0' };

/** Options of `createMcpServer`: the services it calls (resolved once by app/) and who is connected. */
export interface CreateMcpServerOptions {
  services: McpServices;
  principal: Principal;
  projectId: string;
  /** How often subscribed jobs and rollouts are re-read to catch changes made by other processes (ms, default 2000). */
  resourcePollMs?: number;
}

/** One MCP server for one connected caller; `caller` may be refreshed by the transport (role change, revoked token). */
export interface McpSession {
  server: McpServer;
  caller: McpCaller;
  /** Stops following domain events and closes the server. */
  close(): Promise<void>;
}

const INSTRUCTIONS = [
  'VisionInApp: datasets, training, model registry and edge deployments for object detection.',
  'Read tools run at once. Write and critical tools never run without a person\'s approval: their first call either asks you to approve the exact arguments (when this client supports it and your role may) or returns "pending approval" with an approval id, who may approve it and where; then call approvals_wait with that id.',
  'Resources: visioninapp://datasets/{name}, visioninapp://models/{name}/{version}, visioninapp://jobs/{id} (subscribe to follow a run), visioninapp://devices/{id}, visioninapp://rollouts/{id}.',
].join('\n');

function riskNote(tool: AnyTool): string {
  if (tool.risk === 'read' || tool.authorizesItself) return '';
  return ` [${tool.risk}: runs only after a person approves these exact arguments; the first call asks you to approve it or returns "pending approval" with an approval id for approvals_wait]`;
}

/** Builds an MCP server over the tool registry, approvals, agent, resources and prompts, acting as `principal` in `projectId`. */
export function createMcpServer(opts: CreateMcpServerOptions): McpSession {
  const { services } = opts;
  const caller: McpCaller = { principal: opts.principal, projectId: opts.projectId };
  const server = new McpServer(SERVER_INFO, {
    capabilities: {
      tools: { listChanged: true },
      resources: { subscribe: true, listChanged: true },
      prompts: { listChanged: true },
      logging: {},
    },
    instructions: INSTRUCTIONS,
  });
  server.server.oninitialized = () => {
    const name = server.server.getClientVersion()?.name;
    if (name) caller.clientName = name;
  };
  const contextOf = (extra: McpExtra) => callContextOf(services, caller, extra);

  for (const tool of services.registry.list()) {
    const schema = services.registry.schema(tool.name);
    server.registerTool(
      tool.name,
      {
        title: tool.title,
        description: `${tool.description}${riskNote(tool)}`,
        inputSchema: tool.input,
        ...(tool.output instanceof z.ZodObject ? { outputSchema: tool.output } : {}),
        annotations: { title: tool.title, ...schema.annotations, openWorldHint: false },
      },
      (args: unknown, extra: McpExtra) =>
        guarded(async () => {
          const ctx = contextOf(extra);
          if (tool.risk === 'read' || tool.authorizesItself)
            return resultOf(await runTool(toolContextOf(services, ctx, extra), tool.name, args));
          return gatedCall(server, services, caller, ctx, tool, args, extra);
        }),
    );
  }
  registerApprovalsWait(server, services, contextOf);
  if (services.agent) registerAskAssistant(server, services, caller, contextOf);
  const stopResources = registerResources(
    server,
    services,
    contextOf,
    () => caller.projectId,
    opts.resourcePollMs,
  );
  registerPrompts(server);

  let stopped = false;
  let closing: Promise<void> | undefined;
  const cleanup = () => {
    if (stopped) return;
    stopped = true;
    stopResources();
  };
  server.server.onclose = cleanup;
  return {
    server,
    caller,
    close() {
      cleanup();
      closing ??= server.close();
      return closing;
    },
  };
}

const askOutput = {
  threadId: z.string().describe('the conversation; pass it again to continue it'),
  status: z.string().describe('running, awaiting_approval, waiting, done, stopped, failed or clarify'),
  reply: z
    .string()
    .optional()
    .describe("the assistant's direct answer, or a clarifying question with its choices listed"),
  choices: z
    .array(
      z.object({
        label: z.string().describe('what the choice is, for a person'),
        message: z.string().describe('the request to send (as message, with threadId) to pick it'),
      }),
    )
    .optional()
    .describe('answers to the clarifying question, built from the catalog'),
  plan: z
    .array(
      z.object({
        tool: z.string().describe('tool'),
        args: z.record(z.string(), z.unknown()).describe('arguments'),
        reason: z.string().describe('why'),
      }),
    )
    .describe('the planned steps, in order'),
  steps: z
    .array(
      z.object({
        index: z.number().describe('step index'),
        tool: z.string().describe('tool'),
        state: z.string().describe('step state'),
      }),
    )
    .describe('where each step stands'),
  pendingApproval: z
    .object({
      approvalId: z.string().describe('approval id'),
      tool: z.string().describe('tool waiting'),
      risk: z.string().describe('risk'),
      args: z.record(z.string(), z.unknown()).describe('the exact arguments'),
      whoMayApprove: z.string().describe('the policy'),
      where: z.array(z.string()).describe('where to approve it'),
    })
    .optional()
    .describe('the approval the conversation waits for'),
  waitingFor: z
    .object({ kind: z.string().describe('job or rollout'), id: z.string().describe('its id') })
    .optional()
    .describe('the long step the conversation waits for'),
  report: z.string().optional().describe('the run summary once the request is done'),
};

function describeEvent(e: AgentEvent): string | undefined {
  switch (e.type) {
    case 'agent.plan':
      return `plan: ${e.plan.steps.map((s) => s.tool).join(' → ') || e.plan.reply || e.plan.clarify || 'nothing to do'}`;
    case 'agent.step':
      return `step ${e.index + 1} ${e.tool}: ${e.state}`;
    case 'agent.approval':
      return `waiting for approval ${e.approvalId} (${e.tool}, ${e.risk})`;
    case 'agent.progress':
      return `${e.tool}: ${e.progress.message}`;
    case 'agent.wait':
      return `waiting for ${e.wait.kind} ${e.wait.id}`;
    case 'agent.report':
      return 'report ready';
    case 'agent.error':
      return e.message;
    default:
      return undefined;
  }
}

function askResult(services: McpServices, view: ThreadView): CallToolResult {
  const plan = view.plan;
  const choices = plan?.clarify !== undefined ? (plan.choices ?? []) : [];
  const reply = plan?.clarify !== undefined ? clarifyText(plan.clarify, choices) : plan?.reply;
  const pending = view.pendingApproval;
  const out = {
    threadId: view.id,
    status: view.status,
    ...(reply ? { reply } : {}),
    ...(choices.length > 0 ? { choices: choices.map((c) => ({ label: c.label, message: c.message })) } : {}),
    plan: (plan?.steps ?? []).map((s) => ({ tool: s.tool, args: s.args, reason: s.reason })),
    steps: view.steps.map((s, index) => ({ index, tool: s.tool, state: s.state })),
    ...(pending
      ? {
          pendingApproval: {
            approvalId: pending.approvalId,
            tool: pending.tool,
            risk: pending.risk,
            args: pending.args,
            whoMayApprove: pending.policy.summary,
            where: whereToApprove(services, pending.approvalId),
          },
        }
      : {}),
    ...(view.waitingFor ? { waitingFor: { kind: view.waitingFor.kind, id: view.waitingFor.id } } : {}),
    ...(view.report ? { report: view.report } : {}),
  };
  return okResult(out);
}

const MAX_ELICITED_STEPS = 20;

function registerAskAssistant(
  server: McpServer,
  services: McpServices,
  caller: McpCaller,
  contextOf: (extra: McpExtra) => ReturnType<typeof callContextOf>,
): void {
  const agent = services.agent!;
  server.registerTool(
    'ask_assistant',
    {
      title: 'Ask the VisionInApp assistant',
      description:
        'Send a request in plain words (English or Korean), e.g. "train a helmet detector on dataset helmets-v2 and deploy it to line 3 Jetsons". The assistant plans tool calls; every changing step waits for a person\'s approval (asked here when this client supports it, otherwise returned as a pending approval id). Returns the plan, step states, pending approval and the report.',
      inputSchema: {
        message: z.string().min(1).max(4000).describe('the request'),
        threadId: z
          .string()
          .min(1)
          .max(64)
          .optional()
          .describe('continue this conversation instead of starting a new one'),
      },
      outputSchema: askOutput,
      annotations: {
        title: 'Ask the VisionInApp assistant',
        readOnlyHint: false,
        destructiveHint: true,
        idempotentHint: false,
        openWorldHint: false,
      },
    },
    ({ message, threadId }, extra) =>
      guarded(async () => {
        const ctx = contextOf(extra);
        const id = threadId ?? newId('thr');
        const progress = progressReporter(extra);
        const off = agent.events.on((e) => {
          if (e.threadId !== id || progress === undefined) return;
          const text = describeEvent(e);
          if (text) progress({ message: text });
        });
        try {
          let view = threadId
            ? await agent.sendMessage(ctx, id, message)
            : await agent.startConversation(ctx, { message, threadId: id });
          for (let i = 0; i < MAX_ELICITED_STEPS && !extra.signal.aborted; i++) {
            const question = view.status === 'clarify' ? view.plan?.clarify : undefined;
            const choices = view.plan?.choices ?? [];
            if (question !== undefined && choices.length > 0) {
              // A question with choices (which model, which line): the person picks one in the client.
              if (!canElicitForm(server)) break;
              const pick = await elicitChoice(server, question, choices, extra, ctx.log);
              if (pick === undefined) break;
              view = await agent.sendMessage(ctx, id, pick.message);
              continue;
            }
            const pending = view.pendingApproval;
            if (!pending) break;
            const approval = (await services.approvals.get(ctx, pending.approvalId)) as ApprovalRequest;
            if (approval.status !== 'pending' || !canElicit(server, caller, approval)) break;
            const answer = await elicitDecision(server, approval, extra, ctx.log);
            if (answer === undefined) break;
            view = await agent.decide(ctx, id, {
              approvalId: pending.approvalId,
              decision: answer.decision,
              reason:
                answer.reason ??
                `${answer.decision === 'approve' ? 'approved' : 'rejected'} in the MCP client`,
            });
          }
          return askResult(services, view);
        } finally {
          off();
        }
      }),
  );
}
