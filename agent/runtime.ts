// size: 414 lines, at the ~400 bound: one job (running conversations of the graph: start, resume, approvals, waits); nothing in it is another room.
import { Command } from '@langchain/langgraph';
import type { BaseCheckpointSaver } from '@langchain/langgraph-checkpoint';
import type { Kysely } from 'kysely';
import { systemPrincipal, type CallContext } from '../core/context.js';
import { PlatformError } from '../core/errors.js';
import { EventBus, type DomainEventBase } from '../core/events.js';
import { newId } from '../core/ids.js';
import type { Logger } from '../core/log.js';
import type { Database } from '../services/infra/db/schema.js';
import type { ToolWait } from '../tools/define.js';
import type { ToolRegistry } from '../tools/registry.js';
import { toToolError } from '../tools/run-tool.js';
import type { ToolApprovalView, ToolServices } from '../tools/services.js';
import { KyselySaver } from './checkpointer.js';
import { byOf, resumeOf, type AgentDecision } from './approval-resume.js';
import type { AgentEvent, AgentEventInput } from './events.js';
import { buildAgentGraph, type AgentGraph } from './graph.js';
import type { AgentStateValue, ApprovalResume, WaitOutcome } from './state.js';
import type { PlatformCatalog, Planner } from './planner.js';
import { planSchema, type Plan } from './plan.js';
import { ThreadStore } from './thread-store.js';
import { threadView, type ThreadView } from './thread-view.js';

export type { AgentDecision } from './approval-resume.js';
export type { ThreadView } from './thread-view.js';

/** Knows how a kind of long step (training job, rollout) ends, for durable waits. */
export interface WaitSource {
  kind: ToolWait['kind'];
  /** How the job or rollout ended, or undefined while it still runs. */
  check(ctx: CallContext, id: string): Promise<WaitOutcome | undefined>;
  /** The id of the job or rollout a domain event may have ended, if the event is about one. */
  idFrom(event: DomainEventBase): string | undefined;
}

/** Something that publishes domain events (an EventBus). */
export interface DomainEventSource {
  on(listener: (event: DomainEventBase) => void): () => void;
}

/** What the runtime is built from (by the composition root). */
export interface AgentRuntimeOptions {
  db: Kysely<Database>;
  registry: ToolRegistry;
  services: ToolServices;
  planner: Planner;
  catalog: PlatformCatalog;
  log: Logger;
  /** Defaults to the Kysely checkpointer on `db`. */
  checkpointer?: BaseCheckpointSaver;
  approvalMode?: 'mutating' | 'every-step';
  waitSources?: WaitSource[];
  /** Domain events that end waits (training, rollouts) and decide approvals from other channels. */
  domainEvents?: DomainEventSource[];
  /** Safety-net poll of waiting threads, in ms; 0 turns it off (default 30 s). */
  pollIntervalMs?: number;
  /** How long this instance holds a conversation it runs without renewing (default 15 s); another instance waits for it. */
  threadLeaseMs?: number;
  reporter?: (state: AgentStateValue) => Promise<string>;
}

/**
 * Runs conversations on the agent graph: starts them, takes new messages and approval decisions
 * from any channel, streams typed events, and resumes threads waiting on jobs or rollouts when
 * those end, including threads that were waiting before a restart.
 */
export class AgentRuntime {
  /** Every event of every conversation; filter by `threadId`. */
  readonly events = new EventBus<AgentEvent>();
  readonly graph: AgentGraph;
  private readonly opts: AgentRuntimeOptions;
  private readonly locks = new Map<string, Promise<unknown>>();
  private readonly threads: ThreadStore;
  private readonly unsubscribe: Array<() => void> = [];
  private readonly inflight = new Set<Promise<unknown>>();
  private timer: NodeJS.Timeout | undefined;

  constructor(opts: AgentRuntimeOptions) {
    this.opts = opts;
    // newId('inst'): this process among the serve instances sharing the database, for the conversation claims.
    this.threads = new ThreadStore(opts.db, opts.log, newId('inst'), opts.threadLeaseMs);
    this.graph = buildAgentGraph({
      registry: opts.registry,
      services: opts.services,
      planner: opts.planner,
      catalog: opts.catalog,
      checkpointer: opts.checkpointer ?? new KyselySaver(opts.db),
      approvalMode: opts.approvalMode,
      log: opts.log,
      reporter: opts.reporter,
      emit: (threadId, projectId, event) => this.emit(threadId, projectId, event),
    });
  }

  /** Subscribes to domain events and resumes threads whose job or rollout ended, or whose approval was decided, while the platform was down. */
  async start(): Promise<void> {
    for (const source of this.opts.domainEvents ?? []) {
      this.unsubscribe.push(source.on((event) => this.onDomainEvent(event)));
    }
    await this.checkWaitingThreads();
    const every = this.opts.pollIntervalMs ?? 30_000;
    if (every > 0) {
      this.timer = setInterval(() => {
        this.checkWaitingThreads().catch((err: unknown) =>
          this.opts.log.error({ err }, 'checking waiting conversations failed'),
        );
      }, every);
      this.timer.unref();
    }
  }

  /** Stops listening and lets runs in progress finish. */
  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    for (const off of this.unsubscribe.splice(0)) off();
    await this.settled();
  }

  /** Resolves once no run and no event-triggered resume is in progress. */
  async settled(): Promise<void> {
    while (this.inflight.size > 0 || this.locks.size > 0) {
      await Promise.allSettled([...this.inflight, ...this.locks.values()]);
    }
  }

  /** Starts a conversation with a first message; resolves when the graph pauses (approval, wait) or ends. */
  async startConversation(
    ctx: CallContext,
    input: { message: string; threadId?: string; title?: string },
  ): Promise<ThreadView> {
    const message = checkMessage(input.message);
    const id = input.threadId ?? newId('thr');
    await this.threads.create(ctx, id, input.title ?? message);
    return this.run(id, { message, requester: { user: ctx.user, projectId: ctx.projectId } });
  }

  /**
   * Starts a conversation on a plan the platform made (a retrain proposal) instead of the planner's:
   * shown whole, then every mutating step asks for its approval like any other plan.
   */
  async startPlan(
    ctx: CallContext,
    input: { message: string; plan: Plan; threadId?: string; title?: string },
  ): Promise<ThreadView> {
    const message = checkMessage(input.message);
    const plan = planSchema.parse(input.plan);
    const id = input.threadId ?? newId('thr');
    await this.threads.create(ctx, id, input.title ?? message);
    return this.run(id, { message, preset: plan, requester: { user: ctx.user, projectId: ctx.projectId } });
  }

  /** A new request in an existing conversation; refused while it waits for an approval or a job. */
  async sendMessage(ctx: CallContext, threadId: string, text: string): Promise<ThreadView> {
    const message = checkMessage(text);
    const row = await this.threads.get(ctx, threadId);
    if (row.user_id !== ctx.user.userId && ctx.user.role !== 'admin') {
      throw new PlatformError(
        'forbidden',
        `conversation ${threadId} belongs to someone else; start your own conversation`,
      );
    }
    return this.exclusive(threadId, async () => {
      const view = await this.view(threadId);
      if (view.pendingApproval) {
        throw new PlatformError(
          'conflict',
          `conversation ${threadId} waits for approval ${view.pendingApproval.approvalId} (${view.pendingApproval.tool}); approve or reject it first`,
        );
      }
      if (view.waitingFor) {
        throw new PlatformError(
          'conflict',
          `conversation ${threadId} waits for ${view.waitingFor.kind} ${view.waitingFor.id}; it continues when that ends`,
        );
      }
      return this.invoke(threadId, { message, requester: { user: ctx.user, projectId: ctx.projectId } });
    });
  }

  /**
   * Decides the approval a conversation waits for, as `ctx.user` (the approvals policy applies:
   * a viewer is refused and nothing changes), then resumes the conversation.
   */
  async decide(ctx: CallContext, threadId: string, decision: AgentDecision): Promise<ThreadView> {
    await this.threads.get(ctx, threadId);
    const view = await this.view(threadId);
    const pending = view.pendingApproval;
    if (pending === null || pending.approvalId !== decision.approvalId) {
      throw new PlatformError(
        'conflict',
        pending === null
          ? `conversation ${threadId} is not waiting for an approval`
          : `conversation ${threadId} waits for approval ${pending.approvalId}, not ${decision.approvalId}`,
      );
    }
    let args: Record<string, unknown> | undefined;
    if (decision.decision === 'edit') {
      if (decision.args === undefined)
        throw new PlatformError('invalid_input', 'an edit needs the changed arguments in "args"');
      args = this.opts.registry.parseInput(pending.tool, decision.args);
    }
    const approval = await this.opts.services.approvals.decide(ctx, decision.approvalId, {
      decision: decision.decision,
      args,
      reason: decision.reason,
    });
    // Read steps (every-step mode) follow the person's answer; others follow the recorded decision.
    const resume =
      pending.risk === 'read' ? { ...decision, args, by: byOf(ctx) } : resumeOf(approval, byOf(ctx));
    return this.resumeApproval(threadId, resume);
  }

  /** The conversation as it stands. */
  async getThread(ctx: CallContext, threadId: string): Promise<ThreadView> {
    await this.threads.get(ctx, threadId);
    return this.view(threadId);
  }

  /** Conversations of the caller's project, newest first. */
  async listThreads(
    ctx: CallContext,
    opts: { limit?: number; mine?: boolean } = {},
  ): Promise<Array<{ id: string; title: string; status: string; userId: string; updatedAt: number }>> {
    return this.threads.list(ctx, opts);
  }

  /** Continues a conversation whose run stopped on an unexpected error, from its last checkpoint. */
  async retry(ctx: CallContext, threadId: string): Promise<ThreadView> {
    await this.threads.get(ctx, threadId);
    return this.exclusive(threadId, () => this.invoke(threadId, null));
  }

  /** Resumes every conversation waiting on this job or rollout with how it ended. */
  async resumeWait(outcome: WaitOutcome): Promise<string[]> {
    const resumed: string[] = [];
    for (const id of await this.threads.waitingOn(outcome.kind, outcome.id)) {
      await this.exclusive(id, async () => {
        const view = await this.view(id);
        if (view.waitingFor?.kind !== outcome.kind || view.waitingFor.id !== outcome.id) return;
        await this.invoke(id, new Command({ resume: outcome }));
        resumed.push(id);
      });
    }
    return resumed;
  }

  /** Checks every waiting conversation and resumes those whose job or rollout already ended. */
  async checkWaitingThreads(): Promise<string[]> {
    const resumed: string[] = [];
    for (const row of await this.threads.withStatus('waiting')) {
      const source = this.opts.waitSources?.find((s) => s.kind === row.wait_kind);
      if (source === undefined || row.wait_id === null) continue;
      try {
        const outcome = await source.check(this.systemCtx(row.project_id), row.wait_id);
        if (outcome !== undefined) resumed.push(...(await this.resumeWait(outcome)));
      } catch (err) {
        this.opts.log.error({ err, threadId: row.id }, 'checking a waiting conversation failed');
      }
    }
    // a decision made on another channel while this process was down (or just before it crashed)
    for (const row of await this.threads.withStatus('awaiting_approval')) {
      if (row.approval_id === null) continue;
      try {
        const approval = await this.opts.services.approvals.get(
          this.systemCtx(row.project_id),
          row.approval_id,
        );
        if (approval.decision === null) continue;
        await this.resumeFromOtherChannel(row.id, approval);
        resumed.push(row.id);
      } catch (err) {
        this.opts.log.error({ err, threadId: row.id }, 'checking a conversation awaiting approval failed');
      }
    }
    return resumed;
  }

  /** Streams the events of one conversation until `signal` aborts (for sockets, SSE, MCP). */
  async *stream(threadId: string, signal?: AbortSignal): AsyncGenerator<AgentEvent> {
    const queue: AgentEvent[] = [];
    let wake: (() => void) | undefined;
    const off = this.events.on((e) => {
      if (e.threadId !== threadId) return;
      queue.push(e);
      wake?.();
    });
    const onAbort = () => wake?.();
    signal?.addEventListener('abort', onAbort);
    try {
      while (!signal?.aborted) {
        if (queue.length === 0) await new Promise<void>((r) => (wake = r));
        wake = undefined;
        while (queue.length > 0) yield queue.shift()!;
      }
    } finally {
      off();
      signal?.removeEventListener('abort', onAbort);
    }
  }

  private onDomainEvent(event: DomainEventBase): void {
    if (event.type === 'approval.decided') {
      const approval = (event as DomainEventBase & { approval?: ToolApprovalView }).approval;
      if (approval?.threadId) {
        this.track(
          this.resumeFromOtherChannel(approval.threadId, approval).catch((err: unknown) =>
            this.opts.log.error(
              { err, approvalId: approval.id },
              'resuming a conversation after a decision failed',
            ),
          ),
        );
      }
      return;
    }
    for (const source of this.opts.waitSources ?? []) {
      const id = source.idFrom(event);
      if (id === undefined) continue;
      this.track(
        source
          .check(this.systemCtx(event.projectId), id)
          .then((outcome) => (outcome === undefined ? [] : this.resumeWait(outcome)))
          .catch((err: unknown) =>
            this.opts.log.error({ err, kind: source.kind, id }, 'resuming a waiting conversation failed'),
          ),
      );
    }
  }

  private track(work: Promise<unknown>): void {
    this.inflight.add(work);
    void work.finally(() => this.inflight.delete(work));
  }

  /** A decision taken outside `decide` (REST, Slack, MCP through ApprovalService) resumes the conversation too. */
  private async resumeFromOtherChannel(threadId: string, approval: ToolApprovalView): Promise<void> {
    if (approval.decision === null || approval.risk === 'read') return;
    const by = approval.decision.by;
    await this.resumeApproval(threadId, resumeOf(approval, by)).catch((err: unknown) => {
      if (!(err instanceof PlatformError && err.code === 'not_found')) throw err;
    });
  }

  private resumeApproval(threadId: string, resume: ApprovalResume): Promise<ThreadView> {
    return this.exclusive(threadId, async () => {
      const row = await this.threads.find(threadId);
      // Already resumed by the same decision arriving through another path.
      if (row?.status !== 'awaiting_approval' || row.approval_id !== resume.approvalId)
        return this.view(threadId);
      return this.invoke(threadId, new Command({ resume }));
    });
  }

  private run(threadId: string, input: unknown): Promise<ThreadView> {
    return this.exclusive(threadId, () => this.invoke(threadId, input));
  }

  /** One run of the graph until it pauses or ends, then the thread row reflects where it stands. */
  private async invoke(threadId: string, input: unknown): Promise<ThreadView> {
    // Checkpoints are written while the next node runs and flushed before a pause returns; a crash in between
    // re-runs at most the last node, whose approved side effect is replayed from the audit log, not repeated.
    const config = {
      configurable: { thread_id: threadId },
      durability: 'async' as const,
      recursionLimit: 200,
    };
    try {
      await this.graph.invoke(input as never, config);
    } catch (err) {
      const error = toToolError(err);
      this.opts.log.error({ err, threadId }, 'agent run failed');
      const row = await this.threads.find(threadId);
      this.emit(threadId, row?.project_id ?? '', {
        type: 'agent.error',
        message: `${error.message}; the conversation stopped at its last saved step and can be retried`,
      });
      await this.threads.failed(threadId);
      throw err instanceof PlatformError ? err : new PlatformError(error.code, error.message);
    }
    const view = await this.view(threadId);
    await this.threads.save(threadId, {
      status: view.status,
      approvalId: view.pendingApproval?.approvalId ?? null,
      waitKind: view.waitingFor?.kind ?? null,
      waitId: view.waitingFor?.id ?? null,
    });
    return view;
  }

  private async view(threadId: string): Promise<ThreadView> {
    const row = await this.threads.find(threadId);
    if (row === undefined) throw new PlatformError('not_found', `conversation "${threadId}" not found`);
    return threadView(row, await this.graph.getState({ configurable: { thread_id: threadId } }));
  }

  /** Runs `fn` after every earlier run of the same thread: one run per conversation at a time. */
  private exclusive<T>(threadId: string, fn: () => Promise<T>): Promise<T> {
    const previous = this.locks.get(threadId) ?? Promise.resolve();
    const current = previous.catch(() => undefined).then(() => this.threads.claimed(threadId, fn));
    const settled = current.catch(() => undefined);
    this.locks.set(threadId, settled);
    void settled.then(() => {
      if (this.locks.get(threadId) === settled) this.locks.delete(threadId);
    });
    return current;
  }

  private emit(threadId: string, projectId: string, event: AgentEventInput): void {
    this.events.emit({ ...event, threadId, projectId, at: Date.now() } as AgentEvent);
  }

  private systemCtx(projectId: string): CallContext {
    return { user: systemPrincipal(), projectId, requestId: newId('req'), log: this.opts.log };
  }
}

function checkMessage(text: string): string {
  const message = typeof text === 'string' ? text.trim() : '';
  if (message.length === 0)
    throw new PlatformError(
      'invalid_input',
      'the message is empty; say what you want done, e.g. "list datasets"',
    );
  if (message.length > 4000)
    throw new PlatformError(
      'invalid_input',
      `the message is ${message.length} characters; keep it under 4000`,
    );
  return message;
}
