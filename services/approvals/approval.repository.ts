import type { Kysely } from 'kysely';
import type { Principal } from '../../core/context.js';
import { page, type PageRequest } from '../../core/paging.js';
import type { DbDialect } from '../infra/db/port.js';
import type { Database } from '../infra/db/schema.js';
import type { ApprovalStatus } from './model.js';
import type { ApprovalRow } from './approval.rows.js';

/** What a decision writes on a pending request. */
export interface DecisionWrite {
  status: 'approved' | 'rejected';
  decision: 'approve' | 'reject' | 'edit';
  by: Principal;
  at: number;
  reason: string | null;
  edited: { json: string; hash: string } | null;
  supersededBy?: string;
}

/** The approvals domain's SQL, on a database or an open transaction; every status change is a compare-and-set on `pending` or `approved`. */
export class ApprovalRepository {
  constructor(
    private readonly db: Kysely<Database>,
    private readonly dialect: DbDialect,
  ) {}

  /** The same repository inside a transaction. */
  in(trx: Kysely<Database>): ApprovalRepository {
    return new ApprovalRepository(trx, this.dialect);
  }

  /** A row by id, project or pending key, locked for the transaction on MySQL. */
  locked(by: { id?: string; projectId?: string; pendingKey?: string }): Promise<ApprovalRow | undefined> {
    let q = this.db.selectFrom('approvals').selectAll();
    if (by.id !== undefined) q = q.where('id', '=', by.id);
    if (by.projectId !== undefined) q = q.where('project_id', '=', by.projectId);
    if (by.pendingKey !== undefined) q = q.where('pending_key', '=', by.pendingKey);
    if (this.dialect === 'mysql') q = q.forUpdate();
    return q.executeTakeFirst();
  }

  find(projectId: string, id: string): Promise<ApprovalRow | undefined> {
    return this.db
      .selectFrom('approvals')
      .selectAll()
      .where('id', '=', id)
      .where('project_id', '=', projectId)
      .executeTakeFirst();
  }

  byId(id: string): Promise<ApprovalRow> {
    return this.db.selectFrom('approvals').selectAll().where('id', '=', id).executeTakeFirstOrThrow();
  }

  insert(row: ApprovalRow): Promise<unknown> {
    return this.db.insertInto('approvals').values(row).execute();
  }

  /** Marks a pending request expired; false when it was no longer pending. */
  async expire(id: string): Promise<boolean> {
    const res = await this.db
      .updateTable('approvals')
      .set({ status: 'expired', pending_key: null })
      .where('id', '=', id)
      .where('status', '=', 'pending')
      .executeTakeFirst();
    return Number(res.numUpdatedRows) === 1;
  }

  /** Records a decision on a pending request; false when it was no longer pending. */
  async decide(id: string, d: DecisionWrite): Promise<boolean> {
    const res = await this.db
      .updateTable('approvals')
      .set({
        status: d.status,
        decision: d.decision,
        decided_by: d.by.userId,
        decided_by_name: d.by.name,
        decided_by_role: d.by.role,
        decided_at: d.at,
        decision_reason: d.reason,
        edited_args: d.edited?.json ?? null,
        edited_args_hash: d.edited?.hash ?? null,
        pending_key: null,
        ...(d.supersededBy === undefined ? {} : { superseded_by: d.supersededBy }),
      })
      .where('id', '=', id)
      .where('status', '=', 'pending')
      .executeTakeFirst();
    return Number(res.numUpdatedRows) === 1;
  }

  /** Marks an approved request executed; false when another execution used it first. */
  async consume(id: string, by: string, now: number): Promise<boolean> {
    const res = await this.db
      .updateTable('approvals')
      .set({ status: 'executed', consumed_at: now, consumed_by: by })
      .where('id', '=', id)
      .where('status', '=', 'approved')
      .executeTakeFirst();
    return Number(res.numUpdatedRows) === 1;
  }

  /** Requests of a project, newest first; `pending` and `approved` mean unexpired at `now`, `expired` includes those past their expiry. */
  list(
    projectId: string,
    filter: { status?: ApprovalStatus; threadId?: string } & PageRequest,
    now: number,
  ): Promise<ApprovalRow[]> {
    const { limit, offset } = page(filter, { default: 100, max: 1000 });
    let q = this.db.selectFrom('approvals').selectAll().where('project_id', '=', projectId);
    if (filter.threadId !== undefined) q = q.where('thread_id', '=', filter.threadId);
    switch (filter.status) {
      case undefined:
        break;
      case 'pending':
      case 'approved':
        q = q.where('status', '=', filter.status).where('expires_at', '>', now);
        break;
      case 'expired':
        q = q.where((eb) =>
          eb.or([
            eb('status', '=', 'expired'),
            eb.and([eb('status', 'in', ['pending', 'approved']), eb('expires_at', '<=', now)]),
          ]),
        );
        break;
      default:
        q = q.where('status', '=', filter.status);
    }
    return q.orderBy('created_at', 'desc').orderBy('id', 'desc').limit(limit).offset(offset).execute();
  }
}
