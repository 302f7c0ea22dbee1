import type { Kysely, Selectable } from 'kysely';
import type { Split } from '../../vision/formats/index.js';
import type { Database } from '../infra/db/schema.js';
import type { ClassEvaluationResult, EvaluationConfusion, ModelEvaluation } from './model.js';

/** A model evaluation row. */
export type EvaluationRow = Selectable<Database['model_evaluations']>;

/** The evaluations' SQL, on a database or an open transaction. */
export class EvaluationRepository {
  constructor(private readonly db: Kysely<Database>) {}

  /** The same repository inside a transaction. */
  in(trx: Kysely<Database>): EvaluationRepository {
    return new EvaluationRepository(trx);
  }

  async find(projectId: string, evaluationId: string): Promise<ModelEvaluation | undefined> {
    const row = await this.db
      .selectFrom('model_evaluations')
      .selectAll()
      .where('id', '=', evaluationId)
      .where('project_id', '=', projectId)
      .executeTakeFirst();
    return row === undefined ? undefined : fromRow(row);
  }

  async insert(evaluation: ModelEvaluation): Promise<void> {
    await this.db.insertInto('model_evaluations').values(toRow(evaluation)).execute();
  }

  /** Evaluations of a version, newest first. */
  async listForVersion(projectId: string, modelVersionId: string, limit: number): Promise<ModelEvaluation[]> {
    const rows = await this.db
      .selectFrom('model_evaluations')
      .selectAll()
      .where('project_id', '=', projectId)
      .where('model_version_id', '=', modelVersionId)
      .orderBy('finished_at', 'desc')
      .orderBy('id', 'desc')
      .limit(limit)
      .execute();
    return rows.map(fromRow);
  }
}

function toRow(e: ModelEvaluation): EvaluationRow {
  const [datasetName, datasetVersion] = e.dataset.split('@') as [string, string];
  const [modelName, modelVersion] = [
    e.model.slice(0, e.model.lastIndexOf('@')),
    e.model.slice(e.model.lastIndexOf('@') + 1),
  ];
  return {
    id: e.id,
    project_id: e.projectId,
    model_version_id: e.modelVersionId,
    model_name: modelName,
    model_version: Number(modelVersion),
    model_sha256: e.modelSha256,
    dataset_name: datasetName,
    dataset_version: Number(datasetVersion),
    split: e.split,
    images: e.images,
    images_total: e.imagesTotal,
    map50: e.metrics.mAP50,
    map50_95: e.metrics.mAP50_95,
    precision_at_conf: e.metrics.precision,
    recall_at_conf: e.metrics.recall,
    conf: e.conf,
    per_class: JSON.stringify(e.perClass),
    settings: JSON.stringify(e.settings),
    timing: JSON.stringify(e.timing),
    confusion: e.confusion === null ? null : JSON.stringify(e.confusion),
    created_by: e.createdBy,
    started_at: e.startedAt,
    finished_at: e.finishedAt,
  };
}

export function fromRow(r: EvaluationRow): ModelEvaluation {
  return {
    id: r.id,
    projectId: r.project_id,
    modelVersionId: r.model_version_id,
    model: `${r.model_name}@${Number(r.model_version)}`,
    modelSha256: r.model_sha256,
    dataset: `${r.dataset_name}@${Number(r.dataset_version)}`,
    split: r.split as Split,
    images: Number(r.images),
    imagesTotal: Number(r.images_total),
    metrics: {
      mAP50: Number(r.map50),
      mAP50_95: Number(r.map50_95),
      precision: Number(r.precision_at_conf),
      recall: Number(r.recall_at_conf),
    },
    conf: Number(r.conf),
    perClass: JSON.parse(r.per_class) as ClassEvaluationResult[],
    settings: JSON.parse(r.settings) as ModelEvaluation['settings'],
    timing: JSON.parse(r.timing) as ModelEvaluation['timing'],
    confusion: r.confusion === null ? null : (JSON.parse(r.confusion) as EvaluationConfusion),
    createdBy: r.created_by,
    startedAt: Number(r.started_at),
    finishedAt: Number(r.finished_at),
  };
}
