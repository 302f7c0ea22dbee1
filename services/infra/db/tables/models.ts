import type { Generated } from 'kysely';

/** Model versions with artifacts, metrics and lineage, and the stages (aliases) pointing at them. */
export interface ModelTables {
  model_versions: {
    id: string;
    project_id: string;
    name: string;
    /** 1, 2, … per project and name. */
    version: number;
    job_id: string | null;
    attempt: number | null;
    runner_id: string | null;
    dataset_name: string | null;
    dataset_version: number | null;
    /** TrainConfig as JSON. */
    config: string;
    code_version: string | null;
    /** JSON array of `{ name, key, sha256, size }`. */
    artifacts: string;
    model_key: string;
    model_sha256: string;
    model_size: number;
    input_size: number;
    /** JSON array of class names. */
    class_names: string;
    layout: string;
    /** JSON object of metric name → number. */
    metrics: string;
    /** JSON object of class name → metric name → number. */
    per_class: string;
    created_by: string;
    created_at: number;
  };
  model_stages: {
    project_id: string;
    name: string;
    stage: string;
    version_id: string;
    set_by: string;
    set_at: number;
  };
  model_stage_history: {
    id: Generated<number>;
    project_id: string;
    name: string;
    stage: string;
    version_id: string;
    previous_version_id: string | null;
    set_by: string;
    set_at: number;
  };
  /** One evaluation of a version on a dataset split; rows are only ever inserted (history). */
  model_evaluations: {
    id: string;
    project_id: string;
    model_version_id: string;
    model_name: string;
    model_version: number;
    /** sha256 of the model.onnx that was evaluated (checked against the registry). */
    model_sha256: string;
    dataset_name: string;
    dataset_version: number;
    split: string;
    /** Images evaluated, and images in the split (more when the evaluation was capped). */
    images: number;
    images_total: number;
    map50: number;
    map50_95: number;
    /** Precision and recall at the `conf` operating threshold (IoU 0.5). */
    precision_at_conf: number;
    recall_at_conf: number;
    conf: number;
    /** JSON array of per-class results. */
    per_class: string;
    /** JSON: thresholds, class mapping, caps. */
    settings: string;
    /** JSON: load, inference and scoring milliseconds. */
    timing: string;
    /** JSON confusion matrix at `conf` (classes and counts); null for evaluations recorded before it was kept. */
    confusion: string | null;
    created_by: string;
    started_at: number;
    finished_at: number;
  };
}
