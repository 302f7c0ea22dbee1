import type { CallContext } from '../../core/context.js';
import { isPlatformError, PlatformError } from '../../core/errors.js';
import { newId } from '../../core/ids.js';
import { priorEffect, recordEffect } from '../effects.js';
import type { Db } from '../infra/db/port.js';
import { enqueueIndex } from '../infra/search/outbox.js';
import {
  DatasetRepository,
  type DatasetRow,
  type VersionImage,
  type VersionRow,
} from './dataset.repository.js';
import { datasetSearchDoc } from './dataset.search.js';
import type { DatasetEvent } from './events.js';
import { VERSION_EFFECT, versionInfo, type VersionResult } from './model.js';
import { computeStats, type DatasetVersionStats, type ValidationReport } from './report.js';
import type { SplitRatios } from './split.js';

/** A new version as the use cases hand it over. */
export interface NewVersionInput {
  name: string;
  description?: string;
  tags?: string[];
  classNames: string[];
  images: VersionImage[];
  report: ValidationReport;
  ratios: SplitRatios;
  splitMode: DatasetVersionStats['splitMode'];
  lineage: Record<string, unknown>;
  note?: string;
  reason: 'import' | 'resplit' | 'samples';
}

/** Writes new dataset versions: the dataset on its first version, the version and its image rows, the idempotent effect and the search update, in one transaction. */
export class DatasetVersionWriter {
  constructor(
    private readonly db: Db,
    private readonly events: { emit(event: DatasetEvent): void },
    private readonly now: () => number,
  ) {}

  /** The version a call with this idempotency key created before (a retried step), if any. */
  async createdEarlier(ctx: CallContext): Promise<VersionResult | undefined> {
    const earlier = await priorEffect<{ versionId: string }>(this.db.kysely, ctx, VERSION_EFFECT);
    const done =
      earlier === undefined
        ? undefined
        : await new DatasetRepository(this.db.kysely).findVersionById(ctx.projectId, earlier.versionId);
    if (done === undefined) return undefined;
    const info = versionInfo(done.dataset, done.version);
    ctx.log.info(
      { ref: info.ref },
      'dataset version already created under this idempotency key; returning it',
    );
    return { ref: info.ref, version: info, report: JSON.parse(done.version.report) as ValidationReport };
  }

  /** Writes a new version (and the dataset on first import) and its image rows in one transaction, with the search update. */
  async create(ctx: CallContext, input: NewVersionInput): Promise<VersionResult> {
    const at = this.now();
    const stats = computeStats(input.classNames, input.images, input.splitMode);
    const images = [...input.images].sort((a, b) => a.sha256.localeCompare(b.sha256));
    const write = () =>
      this.db.transaction(async (trx) => {
        const repo = new DatasetRepository(trx);
        const earlier = await priorEffect<{ versionId: string }>(trx, ctx, VERSION_EFFECT);
        const done =
          earlier === undefined ? undefined : await repo.findVersionById(ctx.projectId, earlier.versionId);
        if (done !== undefined) return { ...done, replayed: true };
        let dataset = await repo.findDataset(ctx.projectId, input.name);
        let number: number;
        if (dataset === undefined) {
          number = 1;
          dataset = {
            id: newId('ds'),
            project_id: ctx.projectId,
            name: input.name,
            description: input.description ?? '',
            tags: JSON.stringify(input.tags ?? []),
            latest_version: 1,
            created_by: ctx.user.userId,
            created_at: at,
            updated_at: at,
          };
          await repo.insertDataset(dataset);
        } else {
          number = dataset.latest_version + 1;
          const patch = {
            latest_version: number,
            updated_at: at,
            ...(input.description !== undefined ? { description: input.description } : {}),
            ...(input.tags !== undefined ? { tags: JSON.stringify(input.tags) } : {}),
          };
          if (!(await repo.advanceLatest(dataset.id, dataset.latest_version, patch))) {
            throw new PlatformError(
              'conflict',
              `another change to dataset "${input.name}" landed first; retry`,
            );
          }
          dataset = { ...dataset, ...patch };
        }
        const version: VersionRow = {
          id: newId('dsv'),
          project_id: ctx.projectId,
          dataset_id: dataset.id,
          version: number,
          class_names: JSON.stringify(input.classNames),
          stats: JSON.stringify(stats),
          report: JSON.stringify(input.report),
          split_ratios: JSON.stringify(input.ratios),
          lineage: JSON.stringify(input.lineage),
          note: input.note ?? null,
          image_count: images.length,
          box_count: stats.boxes,
          created_by: ctx.user.userId,
          created_at: at,
        };
        await repo.insertVersion(version, images);
        await recordEffect(trx, ctx, VERSION_EFFECT, { versionId: version.id }, at);
        await enqueueIndex(trx, { op: 'upsert', doc: datasetSearchDoc(dataset, version) });
        return { dataset, version, replayed: false };
      });
    let written: { dataset: DatasetRow; version: VersionRow; replayed: boolean };
    try {
      written = await write();
    } catch (err) {
      if (isPlatformError(err)) throw err;
      if (/unique|duplicate/i.test((err as Error).message))
        throw new PlatformError('conflict', `another change to dataset "${input.name}" landed first; retry`);
      throw err;
    }
    const info = versionInfo(written.dataset, written.version);
    if (written.replayed)
      return { ref: info.ref, version: info, report: JSON.parse(written.version.report) as ValidationReport };
    this.events.emit({
      type: 'dataset.version_created',
      projectId: ctx.projectId,
      at,
      datasetId: info.datasetId,
      name: info.name,
      version: info.version,
      reason: input.reason,
    });
    return { ref: info.ref, version: info, report: input.report };
  }
}
