import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import { requireRole, type CallContext } from '../../core/context.js';
import { describeZodError, PlatformError } from '../../core/errors.js';
import { VERSION_EFFECT } from '../datasets/model.js';
import { priorEffect } from '../effects.js';
import type { FeedbackSettings } from './feedback.options.js';
import type { FeedbackRepository, SampleRow } from './feedback.repository.js';
import type { ReviewedBox } from './model.js';

const toDatasetSchema = z.object({
  dataset: z.string().trim().min(1).max(200),
  sampleIds: z.array(z.string().min(1).max(64)).min(1).max(10_000).optional(),
  note: z.string().max(2000).optional(),
});

/** Accepted feedback samples becoming a new dataset version, exactly once per idempotency key; FeedbackService delegates here. */
export class FeedbackToDataset {
  constructor(
    private readonly o: FeedbackSettings,
    private readonly repo: FeedbackRepository,
  ) {}

  /**
   * Makes a new version of `dataset` with accepted samples (default: every accepted sample not yet
   * used), through `DatasetService.addSamples`, with the samples, devices and model versions as lineage.
   */
  async toDataset(
    ctx: CallContext,
    input: { dataset: string; sampleIds?: string[]; note?: string },
  ): Promise<{ ref: string; sampleIds: string[] }> {
    requireRole(ctx, 'operator', 'adding feedback to a dataset');
    const parsed = toDatasetSchema.safeParse(input);
    if (!parsed.success)
      throw new PlatformError('invalid_input', `request is invalid: ${describeZodError(parsed.error)}`);
    const { dataset, note } = parsed.data;
    if (ctx.idempotencyKey !== undefined) {
      // a retried step: the version it made the first time, or its claim released if it made none
      const done = await this.versionMadeEarlier(ctx);
      if (done !== undefined) return done;
      await this.repo.release(`claim:${ctx.idempotencyKey}`);
    }
    let rows: SampleRow[];
    if (parsed.data.sampleIds === undefined) {
      rows = await this.repo.acceptedUnused(ctx.projectId);
      if (rows.length === 0)
        throw new PlatformError(
          'invalid_input',
          'no accepted feedback sample waits for a dataset; review the queue first',
        );
    } else {
      const ids = [...new Set(parsed.data.sampleIds)];
      rows = await this.repo.samples(ctx.projectId, ids);
      const found = new Set(rows.map((r) => r.id));
      const missing = ids.filter((id) => !found.has(id));
      if (missing.length > 0)
        throw new PlatformError(
          'not_found',
          `feedback sample(s) ${missing.join(', ')} not found in this project`,
        );
      const notAccepted = rows.filter((r) => r.status !== 'accepted');
      if (notAccepted.length > 0)
        throw new PlatformError(
          'invalid_input',
          `sample(s) ${notAccepted.map((r) => `${r.id} (${r.status})`).join(', ')} are not accepted; only accepted samples join a dataset`,
        );
      const used = rows.filter((r) => r.used_in !== null);
      if (used.length > 0)
        throw new PlatformError(
          'conflict',
          `sample(s) ${used.map((r) => `${r.id} (in ${r.used_in})`).join(', ')} are already in a dataset version`,
        );
    }
    const ids = rows.map((r) => r.id);
    const claim = `claim:${ctx.idempotencyKey ?? randomUUID()}`;
    if ((await this.repo.claim(ids, claim)) !== ids.length) {
      await this.repo.release(claim);
      throw new PlatformError(
        'conflict',
        'some of these samples were just used or re-reviewed by someone else; reload the queue and retry',
      );
    }
    let ref: string;
    try {
      const samples = rows.map((r) => ({
        imageKey: r.image_key,
        boxes: JSON.parse(r.boxes ?? '[]') as ReviewedBox[],
        source: `feedback/${r.id}`,
      }));
      const result = await this.o.datasets.addSamples(ctx, dataset, samples, {
        note:
          note ??
          `${rows.length} reviewed feedback sample(s) from ${new Set(rows.map((r) => r.device_id)).size} device(s)`,
        lineage: {
          source: 'feedback',
          feedbackSampleIds: ids,
          devices: [...new Set(rows.map((r) => r.device_id))].sort(),
          modelVersions: [
            ...new Set(rows.map((r) => r.model_version_id).filter((v): v is string => v !== null)),
          ].sort(),
          reasons: countBy(rows.map((r) => r.reason)),
          reviewedBy: [
            ...new Set(rows.map((r) => r.reviewed_by).filter((v): v is string => v !== null)),
          ].sort(),
          requestedBy: ctx.user.userId,
        },
      });
      ref = result.ref;
    } catch (err) {
      await this.repo.release(claim);
      throw err;
    }
    const now = this.o.now();
    await this.repo.markUsed(claim, ref, now);
    ctx.log.info({ ref, samples: ids.length }, 'feedback samples added to a new dataset version');
    this.o.events.emit({
      type: 'feedback.dataset_created',
      projectId: ctx.projectId,
      at: now,
      ref,
      sampleIds: ids,
    });
    return { ref, sampleIds: ids };
  }

  /** The dataset version a call with this idempotency key made (a crash may have left its samples claimed): marks them used in it. */
  private async versionMadeEarlier(
    ctx: CallContext,
  ): Promise<{ ref: string; sampleIds: string[] } | undefined> {
    const earlier = await priorEffect<{ versionId: string }>(this.o.db.kysely, ctx, VERSION_EFFECT);
    if (earlier === undefined) return undefined;
    const v = await this.repo.datasetVersion(ctx.projectId, earlier.versionId);
    if (v === undefined) return undefined;
    const ref = `${v.name}@${Number(v.version)}`;
    const sampleIds = (
      (JSON.parse(v.lineage) as { feedbackSampleIds?: string[] }).feedbackSampleIds ?? []
    ).slice();
    if (sampleIds.length > 0) {
      await this.repo.markUsed(`claim:${ctx.idempotencyKey}`, ref, this.o.now(), sampleIds);
    }
    return { ref, sampleIds };
  }
}

function countBy(values: string[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const v of values) out[v] = (out[v] ?? 0) + 1;
  return out;
}
