import type { Transaction } from 'kysely';
import { z } from 'zod';
import { requireRole, type CallContext, type Role } from '../../core/context.js';
import { page } from '../../core/paging.js';
import { describeZodError, PlatformError } from '../../core/errors.js';
import type { EventBus } from '../../core/events.js';
import { priorEffect, recordEffect } from '../effects.js';
import { newId } from '../../core/ids.js';
import type { Db } from '../infra/db/port.js';
import type { Database } from '../infra/db/schema.js';
import type { SearchDoc } from '../infra/search/port.js';
import { enqueueIndex } from '../infra/search/outbox.js';
import type { Logger } from '../../core/log.js';
import type { ModelEvent } from './events.js';
import { compareVersions } from './model.compare.js';
import { ModelRepository, rowToVersion, type VersionRow } from './model.repository.js';
import { modelSearchDoc } from './model.search.js';

export { modelSearchDoc, modelSearchDocs } from './model.search.js';
import { retryTransient } from '../infra/db/retry.js';
import {
  MODEL_STAGES,
  type ModelStage,
  type ModelVersion,
  type StageChange,
  type ModelComparison,
  type RegisterArtifactInput,
} from './model.js';

/** The idempotent-effect kind of a promotion. */
const PROMOTION_EFFECT = 'model.promotion';

/** Dependencies of the registry. */
export interface ModelRegistryOptions {
  db: Db;
  events: EventBus<ModelEvent>;
  log: Logger;
  now?: () => number;
}

type Row = VersionRow;

const NAME_RE = /^[a-z0-9][a-z0-9._-]{0,99}$/;
const refSchema = z.string().trim().min(1).max(200);
const stageSchema = z.enum(MODEL_STAGES);

/** Turns any text into a valid model name: lower case, `[a-z0-9._-]`, at most 100 characters. */
export function modelNameFrom(text: string): string {
  const name = text
    .toLowerCase()
    .replace(/[^a-z0-9._-]+/g, '-')
    .replace(/^[^a-z0-9]+/, '')
    .replace(/-+$/, '')
    .slice(0, 100);
  return name === '' ? 'model' : name;
}

/** True when `name` is a valid model name. */
export function isModelName(name: string): boolean {
  return NAME_RE.test(name);
}

/**
 * The model registry: one version per successful training (`name@N`), its artifacts with sha256,
 * metrics and lineage, stages with history, and comparisons.
 */
export class ModelRegistry {
  private readonly db: Db;
  private readonly repo: ModelRepository;
  private readonly events: EventBus<ModelEvent>;
  private readonly log: Logger;
  private readonly now: () => number;

  constructor({ db, events, log, now = Date.now }: ModelRegistryOptions) {
    this.db = db;
    this.repo = new ModelRepository(db.kysely, db.dialect);
    this.events = events;
    this.log = log;
    this.now = now;
  }

  /**
   * Registers the version a job produced and makes it the name's `candidate`. Idempotent per job:
   * a second call for the same job returns the version already registered. Pass `trx` to commit it
   * together with the job's completion; the `model.registered` event is then the caller's to emit
   * (see `emitRegistered`).
   */
  async registerFromArtifact(
    input: RegisterArtifactInput,
    trx?: Transaction<Database>,
  ): Promise<{ version: ModelVersion; created: boolean }> {
    if (!isModelName(input.name))
      throw new PlatformError('invalid_input', `model name "${input.name}" must match ${NAME_RE.source}`);
    const onnx =
      input.artifact.artifacts.find((a) => a.name === 'model.onnx') ??
      input.artifact.artifacts.find((a) => a.name.endsWith('.onnx'));
    if (onnx === undefined) {
      throw new PlatformError(
        'invalid_input',
        `job ${input.job.id} reported no model.onnx among its artifacts (${input.artifact.artifacts.map((a) => a.name).join(', ')})`,
      );
    }
    const run = async (t: Transaction<Database>) => {
      const repo = this.repo.in(t);
      const existing = await repo.findByJob(input.job.id);
      if (existing !== undefined) return { row: existing, created: false };
      const max = await repo.maxVersion(input.projectId, input.name);
      const now = this.now();
      const row: Row = {
        id: newId('mv'),
        project_id: input.projectId,
        name: input.name,
        version: (max === undefined ? 0 : Number(max.version)) + 1,
        job_id: input.job.id,
        attempt: input.job.attempt,
        runner_id: input.artifact.runnerId || input.job.runnerId,
        dataset_name: input.job.dataset.name,
        dataset_version: input.job.dataset.version,
        config: JSON.stringify(input.job.config),
        code_version: input.artifact.codeVersion ?? null,
        artifacts: JSON.stringify(
          input.artifact.artifacts.map(({ name, key, sha256, size }) => ({ name, key, sha256, size })),
        ),
        model_key: onnx.key,
        model_sha256: onnx.sha256,
        model_size: onnx.size,
        input_size: input.artifact.model.inputSize,
        class_names: JSON.stringify(input.artifact.model.classNames),
        layout: input.artifact.model.layout,
        metrics: JSON.stringify(input.artifact.metrics),
        per_class: JSON.stringify(input.artifact.perClass ?? {}),
        created_by: input.createdBy,
        created_at: now,
      };
      await repo.insertVersion(row);
      await this.setStage(repo, row.project_id, row.name, 'candidate', row.id, 'system', now);
      await enqueueIndex(t, { op: 'upsert', doc: await this.searchDocIn(repo, row) });
      return { row, created: true };
    };
    const { row, created } =
      trx === undefined ? await retryTransient(() => this.db.transaction(run)) : await run(trx);
    const version = await this.toVersion(trx === undefined ? this.repo : this.repo.in(trx), row);
    if (created) {
      this.log.info({ model: version.ref, jobId: input.job.id }, 'model version registered');
      if (trx === undefined) this.emitRegistered(version);
    }
    return { version, created };
  }

  /** Emits `model.registered` (for callers that registered inside their own transaction, after it committed). */
  emitRegistered(version: ModelVersion): void {
    this.events.emit({
      type: 'model.registered',
      projectId: version.projectId,
      at: version.createdAt,
      version,
    });
  }

  /** Points `stage` of the version's name at it; production needs the approver role, the others an operator. */
  async promote(
    ctx: CallContext,
    ref: string,
    stage: ModelStage,
  ): Promise<{ version: ModelVersion; previous: ModelVersion | null }> {
    const parsedStage = stageSchema.safeParse(stage);
    if (!parsedStage.success)
      throw new PlatformError(
        'invalid_input',
        `stage "${String(stage)}" is not one of ${MODEL_STAGES.join(', ')}`,
      );
    const needed: Role = stage === 'production' ? 'approver' : 'operator';
    requireRole(ctx, needed, `promoting to ${stage}`);
    // a retried step (same idempotency key) reports the promotion it made the first time, changing nothing
    const earlier = await priorEffect<{ versionId: string; previousId: string | null }>(
      this.db.kysely,
      ctx,
      PROMOTION_EFFECT,
    );
    if (earlier !== undefined) {
      const version = await this.get(ctx, earlier.versionId);
      const previous =
        earlier.previousId === null || earlier.previousId === earlier.versionId
          ? null
          : await this.get(ctx, earlier.previousId);
      return { version, previous };
    }
    const target = await this.resolveRow(ctx.projectId, ref);
    const now = this.now();
    const previousId = await this.db.transaction(async (trx) => {
      const repo = this.repo.in(trx);
      const prev = await this.setStage(
        repo,
        ctx.projectId,
        target.name,
        stage,
        target.id,
        ctx.user.userId,
        now,
      );
      for (const id of new Set([target.id, prev].filter((x): x is string => x !== null))) {
        const row = await repo.getById(id);
        await enqueueIndex(trx, { op: 'upsert', doc: await this.searchDocIn(repo, row) });
      }
      await recordEffect(trx, ctx, PROMOTION_EFFECT, { versionId: target.id, previousId: prev }, now);
      return prev;
    });
    const version = await this.toVersion(this.repo, target);
    const previous = previousId === null || previousId === target.id ? null : await this.get(ctx, previousId);
    ctx.log.info({ model: version.ref, stage, previous: previous?.ref }, 'model promoted');
    this.events.emit({
      type: 'model.promoted',
      projectId: ctx.projectId,
      at: now,
      name: target.name,
      stage,
      versionId: target.id,
      version: Number(target.version),
      previousVersionId: previousId,
      by: ctx.user.userId,
    });
    return { version, previous };
  }

  /** Resolves `mv_…` ids, `name@N`, `name@production|staging|candidate`, `name@latest` and `name` (latest). */
  async get(ctx: CallContext, ref: string): Promise<ModelVersion> {
    return this.toVersion(this.repo, await this.resolveRow(ctx.projectId, ref));
  }

  /** Versions of the project (or of one name), newest first. */
  async list(
    ctx: CallContext,
    filter: { name?: string; stage?: ModelStage; offset?: number; limit?: number } = {},
  ): Promise<ModelVersion[]> {
    const { limit, offset } = page(filter, { default: 100, max: 1000 });
    const rows = await this.repo.list(ctx.projectId, {
      name: filter.name,
      stage: filter.stage,
      limit,
      offset,
    });
    return Promise.all(rows.map((r) => this.toVersion(this.repo, r)));
  }

  /** Every stage change of a model name, newest first. */
  async stageHistory(ctx: CallContext, name: string): Promise<StageChange[]> {
    const rows = await this.repo.stageHistory(ctx.projectId, name);
    return rows.map((r) => ({
      name: r.name,
      stage: r.stage as ModelStage,
      versionId: r.version_id,
      version: r.version === null ? null : Number(r.version),
      previousVersionId: r.previous_version_id,
      setBy: r.set_by,
      setAt: Number(r.set_at),
    }));
  }

  /** Compares two versions metric by metric (delta = b − a), overall and per class. */
  async compare(ctx: CallContext, refA: string, refB: string): Promise<ModelComparison> {
    const [a, b] = await Promise.all([this.get(ctx, refA), this.get(ctx, refB)]);
    return compareVersions(a, b);
  }

  private async setStage(
    repo: ModelRepository,
    projectId: string,
    name: string,
    stage: ModelStage,
    versionId: string,
    by: string,
    at: number,
  ): Promise<string | null> {
    const prev = await repo.stageHolder(projectId, name, stage, true);
    await repo.setStage({ projectId, name, stage, versionId, by, at }, prev?.version_id ?? null);
    return prev?.version_id ?? null;
  }

  private async resolveRow(projectId: string, ref: string): Promise<Row> {
    const parsed = refSchema.safeParse(ref);
    if (!parsed.success)
      throw new PlatformError(
        'invalid_input',
        `model reference is invalid: ${describeZodError(parsed.error)}`,
      );
    const text = parsed.data;
    let row: Row | undefined;
    if (/^mv_[a-z0-9]+$/.test(text)) {
      row = await this.repo.findById(projectId, text);
    } else {
      const at = text.lastIndexOf('@');
      const name = at === -1 ? text : text.slice(0, at);
      const selector = at === -1 ? 'latest' : text.slice(at + 1);
      if (/^\d+$/.test(selector)) {
        row = await this.repo.findVersion(projectId, name, Number(selector));
      } else if (selector === 'latest') {
        row = await this.repo.findLatest(projectId, name);
      } else if ((MODEL_STAGES as readonly string[]).includes(selector)) {
        const stage = await this.repo.stageHolder(projectId, name, selector);
        if (stage !== undefined) row = await this.repo.findById(projectId, stage.version_id);
        else if (await this.repo.findAnyOfName(projectId, name)) {
          throw new PlatformError(
            'not_found',
            `model "${name}" has no ${selector} version yet; promote one with promote("${name}@N", "${selector}")`,
          );
        }
      } else {
        throw new PlatformError(
          'invalid_input',
          `"${text}" is not a model reference; use name, name@N, name@candidate|staging|production or a version id`,
        );
      }
    }
    if (row !== undefined) return row;
    const known = await this.repo.knownNames(projectId);
    throw new PlatformError(
      'not_found',
      `model "${text}" not found; known models: ${known.length === 0 ? '(none yet — train one first)' : known.join(', ')}`,
    );
  }

  private async toVersion(repo: ModelRepository, row: Row): Promise<ModelVersion> {
    return rowToVersion(row, await repo.stagesOf(row.id));
  }

  private async searchDocIn(repo: ModelRepository, row: Row): Promise<SearchDoc> {
    return modelSearchDoc(rowToVersion(row, await repo.stagesOf(row.id)));
  }
}
