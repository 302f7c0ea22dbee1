import type { Kysely, Selectable } from 'kysely';
import type { Database } from '../infra/db/schema.js';
import type {
  FeedbackReason,
  FeedbackSample,
  FeedbackStatus,
  ReviewedBox,
  RetrainPlan,
  RetrainProposal,
} from './model.js';

/** A feedback sample row. */
export type SampleRow = Selectable<Database['feedback_samples']>;
/** A retrain policy row. */
export type PolicyRow = Selectable<Database['feedback_policies']>;

/** The feedback domain's SQL for intake, confidence per tag, retrain policies and proposals, on a database or an open transaction. */
export class FeedbackRepository {
  constructor(private readonly db: Kysely<Database>) {}

  /** The same repository inside a transaction. */
  in(trx: Kysely<Database>): FeedbackRepository {
    return new FeedbackRepository(trx);
  }

  /** A page of a project's review queue, oldest first, with the total matching. */
  async queue(
    projectId: string,
    f: { status?: FeedbackStatus; deviceId?: string; reason?: FeedbackReason; offset: number; limit: number },
  ): Promise<{ total: number; rows: SampleRow[] }> {
    let q = this.db.selectFrom('feedback_samples').where('project_id', '=', projectId);
    if (f.status !== undefined) q = q.where('status', '=', f.status);
    if (f.deviceId !== undefined) q = q.where('device_id', '=', f.deviceId);
    if (f.reason !== undefined) q = q.where('reason', '=', f.reason);
    const total = await q.select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
    const rows = await q
      .selectAll()
      .orderBy('received_at')
      .orderBy('id')
      .offset(f.offset)
      .limit(f.limit)
      .execute();
    return { total: Number(total.n), rows };
  }

  sample(projectId: string, sampleId: string): Promise<SampleRow | undefined> {
    return this.db
      .selectFrom('feedback_samples')
      .selectAll()
      .where('id', '=', sampleId)
      .where('project_id', '=', projectId)
      .executeTakeFirst();
  }

  samples(projectId: string, ids: string[]): Promise<SampleRow[]> {
    return this.db
      .selectFrom('feedback_samples')
      .selectAll()
      .where('project_id', '=', projectId)
      .where('id', 'in', ids)
      .execute();
  }

  /** Accepted samples of a project not yet in a dataset version, oldest first. */
  acceptedUnused(projectId: string): Promise<SampleRow[]> {
    return this.db
      .selectFrom('feedback_samples')
      .selectAll()
      .where('project_id', '=', projectId)
      .where('status', '=', 'accepted')
      .where('used_in', 'is', null)
      .orderBy('received_at')
      .limit(10_000)
      .execute();
  }

  async countAcceptedUnused(projectId: string): Promise<number> {
    const row = await this.db
      .selectFrom('feedback_samples')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('project_id', '=', projectId)
      .where('status', '=', 'accepted')
      .where('used_in', 'is', null)
      .executeTakeFirstOrThrow();
    return Number(row.n);
  }

  /** Records a review on a sample not yet used in a dataset version; false when it was just used. */
  async review(
    sampleId: string,
    set: Pick<SampleRow, 'status' | 'boxes' | 'reject_reason' | 'reviewed_by' | 'reviewed_at'>,
  ): Promise<boolean> {
    const res = await this.db
      .updateTable('feedback_samples')
      .set(set)
      .where('id', '=', sampleId)
      .where('used_in', 'is', null)
      .executeTakeFirst();
    return Number(res.numUpdatedRows) > 0;
  }

  /** Claims accepted, unused samples for a dataset version being made; returns how many it claimed. */
  async claim(ids: string[], claim: string): Promise<number> {
    const res = await this.db
      .updateTable('feedback_samples')
      .set({ used_in: claim })
      .where('id', 'in', ids)
      .where('used_in', 'is', null)
      .where('status', '=', 'accepted')
      .executeTakeFirst();
    return Number(res.numUpdatedRows);
  }

  /** Marks the samples held by `claim` (only `ids` of them, when given) as used in `ref`. */
  async markUsed(claim: string, ref: string, now: number, ids?: string[]): Promise<void> {
    let q = this.db.updateTable('feedback_samples').set({ used_in: ref, used_at: now });
    if (ids !== undefined) q = q.where('id', 'in', ids);
    await q.where('used_in', '=', claim).execute();
  }

  /** Frees the samples held by `claim`. */
  async release(claim: string): Promise<void> {
    await this.db
      .updateTable('feedback_samples')
      .set({ used_in: null })
      .where('used_in', '=', claim)
      .execute();
  }

  /** Sample counts of a project per value of `col`. */
  async countBy(
    projectId: string,
    col: 'reason' | 'status' | 'device_id' | 'model_version_id',
  ): Promise<Record<string, number>> {
    const rows = await this.db
      .selectFrom('feedback_samples')
      .select([col, (eb) => eb.fn.countAll<number>().as('n')])
      .where('project_id', '=', projectId)
      .groupBy(col)
      .execute();
    return Object.fromEntries(
      rows.map((r) => [String((r as Record<string, unknown>)[col] ?? 'unknown'), Number(r.n)]),
    );
  }

  /** A project's confidence buckets from `since` on, oldest first. */
  confidenceSince(projectId: string, since: number) {
    return this.db
      .selectFrom('feedback_confidence')
      .selectAll()
      .where('project_id', '=', projectId)
      .where('hour_start', '>=', since)
      .orderBy('hour_start')
      .execute();
  }

  /** A dataset version of the project by id: its dataset's name, number and lineage. */
  datasetVersion(projectId: string, versionId: string) {
    return this.db
      .selectFrom('dataset_versions')
      .innerJoin('datasets', 'datasets.id', 'dataset_versions.dataset_id')
      .select(['datasets.name', 'dataset_versions.version', 'dataset_versions.lineage'])
      .where('dataset_versions.id', '=', versionId)
      .where('dataset_versions.project_id', '=', projectId)
      .executeTakeFirst();
  }

  /** Whether a sample with this image key is already queued. */
  async hasImage(imageKey: string): Promise<boolean> {
    const row = await this.db
      .selectFrom('feedback_samples')
      .select('id')
      .where('image_key', '=', imageKey)
      .executeTakeFirst();
    return row !== undefined;
  }

  insertSample(row: SampleRow): Promise<unknown> {
    return this.db.insertInto('feedback_samples').values(row).execute();
  }

  /** Adds one heartbeat's confidence to an existing hour bucket; false when the bucket does not exist yet. */
  async addConfidence(projectId: string, tag: string, hour: number, conf: number): Promise<boolean> {
    const res = await this.db
      .updateTable('feedback_confidence')
      .set((eb) => ({ conf_sum: eb('conf_sum', '+', conf), conf_count: eb('conf_count', '+', 1) }))
      .where('project_id', '=', projectId)
      .where('tag', '=', tag)
      .where('hour_start', '=', hour)
      .executeTakeFirst();
    return Number(res.numUpdatedRows) > 0;
  }

  /** Creates an hour bucket with one heartbeat; throws when another consumer created it first. */
  async insertConfidence(projectId: string, tag: string, hour: number, conf: number): Promise<void> {
    await this.db
      .insertInto('feedback_confidence')
      .values({ project_id: projectId, tag, hour_start: hour, conf_sum: conf, conf_count: 1 })
      .execute();
  }

  /** Mean top confidence of a tag over the hour buckets in [from, to); null without heartbeats. */
  async meanConfidence(projectId: string, tag: string, from: number, to: number): Promise<number | null> {
    const row = await this.db
      .selectFrom('feedback_confidence')
      .select((eb) => [eb.fn.sum<number>('conf_sum').as('s'), eb.fn.sum<number>('conf_count').as('n')])
      .where('project_id', '=', projectId)
      .where('tag', '=', tag)
      .where('hour_start', '>=', from)
      .where('hour_start', '<', to)
      .executeTakeFirst();
    const n = Number(row?.n ?? 0);
    return n > 0 ? Number(row?.s ?? 0) / n : null;
  }

  policies(projectId: string): Promise<PolicyRow[]> {
    return this.db
      .selectFrom('feedback_policies')
      .selectAll()
      .where('project_id', '=', projectId)
      .orderBy('model_name')
      .execute();
  }

  /** Replaces (or creates) a model's policy; run it in a transaction. */
  async savePolicy(
    projectId: string,
    modelName: string,
    values: { policy: string; updated_by: string; updated_at: number },
  ): Promise<void> {
    const res = await this.db
      .updateTable('feedback_policies')
      .set(values)
      .where('project_id', '=', projectId)
      .where('model_name', '=', modelName)
      .executeTakeFirst();
    if (Number(res.numUpdatedRows) === 0)
      await this.db
        .insertInto('feedback_policies')
        .values({ project_id: projectId, model_name: modelName, ...values })
        .execute();
  }

  /** When the last proposal for a model was made, if any. */
  async lastProposalAt(projectId: string, modelName: string): Promise<number | undefined> {
    const last = await this.db
      .selectFrom('feedback_proposals')
      .select('created_at')
      .where('project_id', '=', projectId)
      .where('model_name', '=', modelName)
      .orderBy('created_at', 'desc')
      .limit(1)
      .executeTakeFirst();
    return last === undefined ? undefined : Number(last.created_at);
  }

  /** Ids of accepted samples of a model not yet in a dataset version, oldest first. */
  async waitingSampleIds(projectId: string, modelName: string): Promise<string[]> {
    const rows = await this.db
      .selectFrom('feedback_samples')
      .select('id')
      .where('project_id', '=', projectId)
      .where('model_name', '=', modelName)
      .where('status', '=', 'accepted')
      .where('used_in', 'is', null)
      .orderBy('received_at')
      .limit(10_000)
      .execute();
    return rows.map((r) => r.id);
  }

  async insertProposal(p: RetrainProposal): Promise<void> {
    await this.db
      .insertInto('feedback_proposals')
      .values({
        id: p.id,
        project_id: p.projectId,
        model_name: p.model,
        trigger_kind: p.trigger,
        plan: JSON.stringify(p.plan),
        created_at: p.createdAt,
      })
      .execute();
  }

  async proposals(projectId: string, limit: number): Promise<RetrainProposal[]> {
    const rows = await this.db
      .selectFrom('feedback_proposals')
      .selectAll()
      .where('project_id', '=', projectId)
      .orderBy('created_at', 'desc')
      .limit(limit)
      .execute();
    return rows.map((r) => ({
      id: r.id,
      projectId: r.project_id,
      model: r.model_name,
      trigger: r.trigger_kind as RetrainProposal['trigger'],
      plan: JSON.parse(r.plan) as RetrainPlan,
      createdAt: Number(r.created_at),
    }));
  }
}

/** A sample row as the domain's `FeedbackSample`. */
export function toSample(r: SampleRow): FeedbackSample {
  return {
    id: r.id,
    projectId: r.project_id,
    deviceId: r.device_id,
    modelVersionId: r.model_version_id,
    modelName: r.model_name,
    imageKey: r.image_key,
    sha256: r.sha256,
    width: Number(r.width),
    height: Number(r.height),
    reason: r.reason,
    predictions: JSON.parse(r.predictions) as FeedbackSample['predictions'],
    topConfidence: r.top_confidence === null ? null : Number(r.top_confidence),
    capturedAt: Number(r.captured_at),
    receivedAt: Number(r.received_at),
    status: r.status,
    boxes: r.boxes === null ? null : (JSON.parse(r.boxes) as ReviewedBox[]),
    rejectReason: r.reject_reason,
    reviewedBy: r.reviewed_by,
    reviewedAt: r.reviewed_at === null ? null : Number(r.reviewed_at),
    usedIn: r.used_in !== null && r.used_in.startsWith('claim:') ? null : r.used_in,
  };
}
