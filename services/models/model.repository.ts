import type { Kysely, Selectable } from 'kysely';
import type { DbDialect } from '../infra/db/port.js';
import type { Database } from '../infra/db/schema.js';
import type { OutputLayout, TrainConfig } from '../../protocol/envelope.js';
import { MODEL_STAGES, type ModelArtifact, type ModelStage, type ModelVersion } from './model.js';

/** A model version row. */
export type VersionRow = Selectable<Database['model_versions']>;

/** The model registry's SQL, on a database or an open transaction. */
export class ModelRepository {
  constructor(
    private readonly db: Kysely<Database>,
    private readonly dialect: DbDialect,
  ) {}

  /** The same repository inside a transaction. */
  in(trx: Kysely<Database>): ModelRepository {
    return new ModelRepository(trx, this.dialect);
  }

  findByJob(jobId: string): Promise<VersionRow | undefined> {
    return this.db.selectFrom('model_versions').selectAll().where('job_id', '=', jobId).executeTakeFirst();
  }

  /** The highest version number of a name (locked on MySQL), if any. */
  maxVersion(projectId: string, name: string): Promise<{ version: number } | undefined> {
    let maxQ = this.db
      .selectFrom('model_versions')
      .select('version')
      .where('project_id', '=', projectId)
      .where('name', '=', name)
      .orderBy('version', 'desc')
      .limit(1);
    if (this.dialect === 'mysql') maxQ = maxQ.forUpdate();
    return maxQ.executeTakeFirst();
  }

  async insertVersion(row: VersionRow): Promise<void> {
    await this.db.insertInto('model_versions').values(row).execute();
  }

  getById(id: string): Promise<VersionRow> {
    return this.db.selectFrom('model_versions').selectAll().where('id', '=', id).executeTakeFirstOrThrow();
  }

  private versions(projectId: string) {
    return this.db.selectFrom('model_versions').selectAll().where('project_id', '=', projectId);
  }

  findById(projectId: string, id: string): Promise<VersionRow | undefined> {
    return this.versions(projectId).where('id', '=', id).executeTakeFirst();
  }

  findVersion(projectId: string, name: string, version: number): Promise<VersionRow | undefined> {
    return this.versions(projectId)
      .where('name', '=', name)
      .where('version', '=', version)
      .executeTakeFirst();
  }

  findLatest(projectId: string, name: string): Promise<VersionRow | undefined> {
    return this.versions(projectId)
      .where('name', '=', name)
      .orderBy('version', 'desc')
      .limit(1)
      .executeTakeFirst();
  }

  findAnyOfName(projectId: string, name: string): Promise<VersionRow | undefined> {
    return this.versions(projectId).where('name', '=', name).executeTakeFirst();
  }

  /** Up to 20 model names of the project, sorted. */
  async knownNames(projectId: string): Promise<string[]> {
    return (
      await this.db
        .selectFrom('model_versions')
        .select('name')
        .distinct()
        .where('project_id', '=', projectId)
        .orderBy('name')
        .limit(20)
        .execute()
    ).map((r) => r.name);
  }

  /** The version holding a stage of a name; with `lock`, locked on MySQL. */
  stageHolder(
    projectId: string,
    name: string,
    stage: string,
    lock = false,
  ): Promise<{ version_id: string } | undefined> {
    let q = this.db
      .selectFrom('model_stages')
      .select('version_id')
      .where('project_id', '=', projectId)
      .where('name', '=', name)
      .where('stage', '=', stage);
    if (lock && this.dialect === 'mysql') q = q.forUpdate();
    return q.executeTakeFirst();
  }

  /** Puts a version in a stage (inserting or replacing the holder) and records the change. */
  async setStage(
    c: { projectId: string; name: string; stage: ModelStage; versionId: string; by: string; at: number },
    previousId: string | null,
  ): Promise<void> {
    const { projectId, name, stage, versionId, by, at } = c;
    if (previousId === null) {
      await this.db
        .insertInto('model_stages')
        .values({ project_id: projectId, name, stage, version_id: versionId, set_by: by, set_at: at })
        .execute();
    } else {
      await this.db
        .updateTable('model_stages')
        .set({ version_id: versionId, set_by: by, set_at: at })
        .where('project_id', '=', projectId)
        .where('name', '=', name)
        .where('stage', '=', stage)
        .execute();
    }
    await this.db
      .insertInto('model_stage_history')
      .values({
        project_id: projectId,
        name,
        stage,
        version_id: versionId,
        previous_version_id: previousId,
        set_by: by,
        set_at: at,
      })
      .execute();
  }

  /** A version's stages, in stage order. */
  async stagesOf(versionId: string): Promise<ModelStage[]> {
    const rows = await this.db
      .selectFrom('model_stages')
      .select('stage')
      .where('version_id', '=', versionId)
      .execute();
    return rows
      .map((r) => r.stage as ModelStage)
      .sort((x, y) => MODEL_STAGES.indexOf(x) - MODEL_STAGES.indexOf(y));
  }

  /** Versions of the project (or of one name, or in one stage), newest first. */
  list(
    projectId: string,
    f: { name?: string; stage?: ModelStage; limit: number; offset: number },
  ): Promise<VersionRow[]> {
    let q = this.db
      .selectFrom('model_versions')
      .selectAll('model_versions')
      .where('model_versions.project_id', '=', projectId);
    if (f.name !== undefined) q = q.where('model_versions.name', '=', f.name);
    if (f.stage !== undefined) {
      const stage = f.stage;
      q = q.where((eb) =>
        eb.exists(
          eb
            .selectFrom('model_stages')
            .select('model_stages.version_id')
            .whereRef('model_stages.version_id', '=', 'model_versions.id')
            .where('model_stages.stage', '=', stage),
        ),
      );
    }
    return q
      .orderBy('model_versions.created_at', 'desc')
      .orderBy('model_versions.version', 'desc')
      .limit(f.limit)
      .offset(f.offset)
      .execute();
  }

  /** Every stage change of a model name, newest first, with the version number. */
  stageHistory(projectId: string, name: string) {
    return this.db
      .selectFrom('model_stage_history')
      .leftJoin('model_versions', 'model_versions.id', 'model_stage_history.version_id')
      .select([
        'model_stage_history.name',
        'model_stage_history.stage',
        'model_stage_history.version_id',
        'model_stage_history.previous_version_id',
        'model_stage_history.set_by',
        'model_stage_history.set_at',
        'model_versions.version',
      ])
      .where('model_stage_history.project_id', '=', projectId)
      .where('model_stage_history.name', '=', name)
      .orderBy('model_stage_history.id', 'desc')
      .execute();
  }

  /** A page of all versions by id, for a reindex. */
  page(offset: number, limit: number): Promise<VersionRow[]> {
    return this.db
      .selectFrom('model_versions')
      .selectAll()
      .orderBy('id')
      .limit(limit)
      .offset(offset)
      .execute();
  }

  /** A version's stages, unordered. */
  async stageList(versionId: string): Promise<ModelStage[]> {
    return (
      await this.db.selectFrom('model_stages').select('stage').where('version_id', '=', versionId).execute()
    ).map((r) => r.stage as ModelStage);
  }
}

/** A version row with its stages as the domain shows it. */
export function rowToVersion(row: VersionRow, stages: ModelStage[]): ModelVersion {
  const datasetName = row.dataset_name;
  const datasetVersion = row.dataset_version === null ? null : Number(row.dataset_version);
  return {
    id: row.id,
    projectId: row.project_id,
    name: row.name,
    version: Number(row.version),
    ref: `${row.name}@${Number(row.version)}`,
    stages,
    model: {
      key: row.model_key,
      sha256: row.model_sha256,
      size: Number(row.model_size),
      layout: row.layout as OutputLayout,
      inputSize: Number(row.input_size),
    },
    classNames: JSON.parse(row.class_names) as string[],
    artifacts: JSON.parse(row.artifacts) as ModelArtifact[],
    metrics: JSON.parse(row.metrics) as Record<string, number>,
    perClass: JSON.parse(row.per_class) as Record<string, Record<string, number>>,
    lineage: {
      dataset: datasetName === null ? null : `${datasetName}@${datasetVersion}`,
      datasetName,
      datasetVersion,
      config: JSON.parse(row.config) as TrainConfig,
      jobId: row.job_id,
      attempt: row.attempt === null ? null : Number(row.attempt),
      runnerId: row.runner_id,
      codeVersion: row.code_version,
    },
    createdBy: row.created_by,
    createdAt: Number(row.created_at),
  };
}
