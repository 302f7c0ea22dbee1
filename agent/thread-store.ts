import type { Kysely, Selectable } from 'kysely';
import type { CallContext } from '../core/context.js';
import { PlatformError } from '../core/errors.js';
import type { Logger } from '../core/log.js';
import type { Database } from '../services/infra/db/schema.js';

/** One conversation's row in `agent_threads`. */
export type ThreadRow = Selectable<Database['agent_threads']>;

/**
 * The `agent_threads` table: one row per conversation with where it stands (status, the approval
 * or job it waits for) and which serve instance runs it now (a renewed lease), so several
 * instances sharing the database never run one conversation's graph at once.
 */
export class ThreadStore {
  constructor(
    private readonly db: Kysely<Database>,
    private readonly log: Logger,
    private readonly instanceId: string,
    private readonly leaseMs = 15_000,
  ) {}

  /** Adds a conversation; refused when the id is taken. */
  async create(ctx: CallContext, id: string, title: string): Promise<void> {
    const existing = await this.db
      .selectFrom('agent_threads')
      .select('id')
      .where('id', '=', id)
      .executeTakeFirst();
    if (existing !== undefined)
      throw new PlatformError('conflict', `conversation ${id} already exists; send a message to it instead`);
    const now = Date.now();
    await this.db
      .insertInto('agent_threads')
      .values({
        id,
        project_id: ctx.projectId,
        user_id: ctx.user.userId,
        title: title.slice(0, 200),
        status: 'running',
        wait_kind: null,
        wait_id: null,
        approval_id: null,
        created_at: now,
        updated_at: now,
      })
      .execute();
  }

  /** The row, or undefined. */
  find(threadId: string): Promise<ThreadRow | undefined> {
    return this.db.selectFrom('agent_threads').selectAll().where('id', '=', threadId).executeTakeFirst();
  }

  /** The row of a conversation of the caller's project; not_found otherwise (ids of other projects stay hidden). */
  async get(ctx: CallContext, threadId: string): Promise<ThreadRow> {
    const row = await this.find(threadId);
    if (row === undefined || row.project_id !== ctx.projectId) {
      throw new PlatformError(
        'not_found',
        `conversation "${threadId}" not found in project "${ctx.projectId}"; list conversations to find it`,
      );
    }
    return row;
  }

  /** Conversations of the caller's project, newest first. */
  async list(
    ctx: CallContext,
    opts: { limit?: number; mine?: boolean } = {},
  ): Promise<Array<{ id: string; title: string; status: string; userId: string; updatedAt: number }>> {
    let q = this.db.selectFrom('agent_threads').selectAll().where('project_id', '=', ctx.projectId);
    if (opts.mine) q = q.where('user_id', '=', ctx.user.userId);
    const rows = await q
      .orderBy('updated_at', 'desc')
      .limit(opts.limit ?? 50)
      .execute();
    return rows.map((r) => ({
      id: r.id,
      title: r.title,
      status: r.status,
      userId: r.user_id,
      updatedAt: Number(r.updated_at),
    }));
  }

  /** Rows by status (`waiting`, `awaiting_approval`), for resuming after a restart. */
  withStatus(status: string): Promise<ThreadRow[]> {
    return this.db.selectFrom('agent_threads').selectAll().where('status', '=', status).execute();
  }

  /** Conversations waiting on this job or rollout. */
  async waitingOn(kind: string, id: string): Promise<string[]> {
    const rows = await this.db
      .selectFrom('agent_threads')
      .select('id')
      .where('wait_kind', '=', kind)
      .where('wait_id', '=', id)
      .where('status', '=', 'waiting')
      .execute();
    return rows.map((r) => r.id);
  }

  /** Records where a conversation stands after a run: its status and the approval or job it waits for. */
  async save(
    threadId: string,
    at: { status: string; approvalId: string | null; waitKind: string | null; waitId: string | null },
  ): Promise<void> {
    await this.db
      .updateTable('agent_threads')
      .set({
        status: at.status,
        approval_id: at.approvalId,
        wait_kind: at.waitKind,
        wait_id: at.waitId,
        updated_at: Date.now(),
      })
      .where('id', '=', threadId)
      .execute();
  }

  /** Marks a run that stopped on an unexpected error. */
  async failed(threadId: string): Promise<void> {
    await this.db
      .updateTable('agent_threads')
      .set({ status: 'failed', updated_at: Date.now() })
      .where('id', '=', threadId)
      .execute();
  }

  /**
   * Runs `fn` while this instance holds the conversation (a lease it renews every third of its
   * length): another instance waits until the holder is done, or its lease ran out because it died,
   * then sees where things stand.
   */
  async claimed<T>(threadId: string, fn: () => Promise<T>): Promise<T> {
    const take = async (): Promise<'taken' | 'held' | 'absent'> => {
      const now = Date.now();
      const res = await this.db
        .updateTable('agent_threads')
        .set({ run_owner: this.instanceId, run_lease_until: now + this.leaseMs })
        .where('id', '=', threadId)
        .where((eb) =>
          eb.or([
            eb('run_owner', 'is', null),
            eb('run_owner', '=', this.instanceId),
            eb('run_lease_until', '<', now),
          ]),
        )
        .executeTakeFirst();
      if (Number(res.numUpdatedRows) === 1) return 'taken';
      return (await this.find(threadId)) === undefined ? 'absent' : 'held';
    };
    let state = await take();
    while (state === 'held') {
      await new Promise((r) => setTimeout(r, 250));
      state = await take();
    }
    if (state === 'absent') return fn();
    const renew = setInterval(
      () => {
        this.db
          .updateTable('agent_threads')
          .set({ run_lease_until: Date.now() + this.leaseMs })
          .where('id', '=', threadId)
          .where('run_owner', '=', this.instanceId)
          .execute()
          .catch((err: unknown) =>
            this.log.warn({ err, threadId }, 'could not renew the claim on a conversation'),
          );
      },
      Math.max(Math.floor(this.leaseMs / 3), 50),
    );
    renew.unref();
    try {
      return await fn();
    } finally {
      clearInterval(renew);
      await this.db
        .updateTable('agent_threads')
        .set({ run_owner: null, run_lease_until: null })
        .where('id', '=', threadId)
        .where('run_owner', '=', this.instanceId)
        .execute()
        .catch((err: unknown) =>
          this.log.warn({ err, threadId }, 'could not release the claim on a conversation'),
        );
    }
  }
}
