import type { Kysely, Selectable } from 'kysely';
import type { LabeledBox, Split } from '../../vision/formats/index.js';
import type { Database } from '../infra/db/schema.js';

/** A dataset row. */
export type DatasetRow = Selectable<Database['datasets']>;
/** A dataset version row. */
export type VersionRow = Selectable<Database['dataset_versions']>;

/** An image of a version, as the service works with it. */
export interface VersionImage {
  sha256: string;
  imageKey: string;
  imageBytes: number;
  width: number;
  height: number;
  split: Split;
  boxes: LabeledBox[];
  labelKey: string;
  labelSha256: string;
  labelBytes: number;
  thumbnailKey: string | null;
  sourcePath: string;
}

const INSERT_CHUNK = 200;

/** The datasets domain's SQL, on a database or an open transaction. */
export class DatasetRepository {
  constructor(private readonly db: Kysely<Database>) {}

  findDataset(projectId: string, name: string): Promise<DatasetRow | undefined> {
    return this.db
      .selectFrom('datasets')
      .selectAll()
      .where('project_id', '=', projectId)
      .where('name', '=', name)
      .executeTakeFirst();
  }

  listDatasets(projectId: string): Promise<DatasetRow[]> {
    return this.db
      .selectFrom('datasets')
      .selectAll()
      .where('project_id', '=', projectId)
      .orderBy('name')
      .execute();
  }

  findVersion(datasetId: string, version: number): Promise<VersionRow | undefined> {
    return this.db
      .selectFrom('dataset_versions')
      .selectAll()
      .where('dataset_id', '=', datasetId)
      .where('version', '=', version)
      .executeTakeFirst();
  }

  /** A version and its dataset by the version's id, within a project. */
  async findVersionById(
    projectId: string,
    versionId: string,
  ): Promise<{ dataset: DatasetRow; version: VersionRow } | undefined> {
    const version = await this.db
      .selectFrom('dataset_versions')
      .selectAll()
      .where('id', '=', versionId)
      .where('project_id', '=', projectId)
      .executeTakeFirst();
    if (version === undefined) return undefined;
    const dataset = await this.db
      .selectFrom('datasets')
      .selectAll()
      .where('id', '=', version.dataset_id)
      .executeTakeFirst();
    return dataset === undefined ? undefined : { dataset, version };
  }

  listVersions(datasetId: string): Promise<VersionRow[]> {
    return this.db
      .selectFrom('dataset_versions')
      .selectAll()
      .where('dataset_id', '=', datasetId)
      .orderBy('version', 'desc')
      .execute();
  }

  async insertDataset(row: DatasetRow): Promise<void> {
    await this.db.insertInto('datasets').values(row).execute();
  }

  /** Moves the latest version forward only if nobody else did first; false when another write won. */
  async advanceLatest(
    datasetId: string,
    from: number,
    patch: { latest_version: number; updated_at: number; description?: string; tags?: string },
  ): Promise<boolean> {
    const res = await this.db
      .updateTable('datasets')
      .set(patch)
      .where('id', '=', datasetId)
      .where('latest_version', '=', from)
      .executeTakeFirst();
    return Number(res.numUpdatedRows) === 1;
  }

  async insertVersion(row: VersionRow, images: readonly VersionImage[]): Promise<void> {
    await this.db.insertInto('dataset_versions').values(row).execute();
    for (let i = 0; i < images.length; i += INSERT_CHUNK) {
      await this.db
        .insertInto('dataset_images')
        .values(
          images.slice(i, i + INSERT_CHUNK).map((img) => ({
            project_id: row.project_id,
            version_id: row.id,
            sha256: img.sha256,
            image_key: img.imageKey,
            image_bytes: img.imageBytes,
            width: img.width,
            height: img.height,
            split: img.split,
            boxes: JSON.stringify(img.boxes),
            label_key: img.labelKey,
            label_sha256: img.labelSha256,
            label_bytes: img.labelBytes,
            thumbnail_key: img.thumbnailKey,
            source_path: img.sourcePath,
          })),
        )
        .execute();
    }
  }

  async countImages(versionId: string, split?: Split): Promise<number> {
    let q = this.db
      .selectFrom('dataset_images')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('version_id', '=', versionId);
    if (split !== undefined) q = q.where('split', '=', split);
    const row = await q.executeTakeFirst();
    return Number(row?.n ?? 0);
  }

  /** Images of a version in a stable order (split, then content hash). */
  async listImages(
    versionId: string,
    opts: { split?: Split; offset?: number; limit?: number } = {},
  ): Promise<VersionImage[]> {
    let q = this.db.selectFrom('dataset_images').selectAll().where('version_id', '=', versionId);
    if (opts.split !== undefined) q = q.where('split', '=', opts.split);
    q = q.orderBy('split').orderBy('sha256');
    if (opts.limit !== undefined) q = q.limit(opts.limit).offset(opts.offset ?? 0);
    const rows = await q.execute();
    return rows.map((r) => ({
      sha256: r.sha256,
      imageKey: r.image_key,
      imageBytes: Number(r.image_bytes),
      width: r.width,
      height: r.height,
      split: r.split,
      boxes: JSON.parse(r.boxes) as LabeledBox[],
      labelKey: r.label_key,
      labelSha256: r.label_sha256,
      labelBytes: r.label_bytes,
      thumbnailKey: r.thumbnail_key,
      sourcePath: r.source_path,
    }));
  }

  /** Every dataset of every project with its latest version, in pages (for a search reindex). */
  async *allDatasetsWithLatest(
    pageSize = 200,
  ): AsyncGenerator<{ dataset: DatasetRow; version: VersionRow | undefined }> {
    let after = '';
    for (;;) {
      const page = await this.db
        .selectFrom('datasets')
        .selectAll()
        .where('id', '>', after)
        .orderBy('id')
        .limit(pageSize)
        .execute();
      for (const dataset of page)
        yield { dataset, version: await this.findVersion(dataset.id, dataset.latest_version) };
      if (page.length < pageSize) return;
      after = page[page.length - 1]!.id;
    }
  }
}
