import type { CallContext } from '../core/context.js';
import type { DbExecutor } from './infra/db/port.js';

/**
 * Idempotent effects: a service operation that creates something records what it created under the
 * call's idempotency key (the approval that authorised the step), in the same transaction as the
 * thing itself; a retry under the same key finds it and returns it instead of acting again.
 */

/** What was created under the call's idempotency key for `kind`, or undefined (also when the call has no key). */
export async function priorEffect<T>(db: DbExecutor, ctx: CallContext, kind: string): Promise<T | undefined> {
  if (ctx.idempotencyKey === undefined) return undefined;
  const row = await db
    .selectFrom('idempotent_effects')
    .select(['ref'])
    .where('idempotency_key', '=', ctx.idempotencyKey)
    .where('kind', '=', kind)
    .where('project_id', '=', ctx.projectId)
    .executeTakeFirst();
  return row === undefined ? undefined : (JSON.parse(row.ref) as T);
}

/** Records the effect inside the transaction that creates it; a concurrent second run with the same key fails on the primary key and rolls back. */
export async function recordEffect(
  trx: DbExecutor,
  ctx: CallContext,
  kind: string,
  ref: unknown,
  now = Date.now(),
): Promise<void> {
  if (ctx.idempotencyKey === undefined) return;
  await trx
    .insertInto('idempotent_effects')
    .values({
      idempotency_key: ctx.idempotencyKey,
      kind,
      project_id: ctx.projectId,
      ref: JSON.stringify(ref),
      created_at: now,
    })
    .execute();
}
