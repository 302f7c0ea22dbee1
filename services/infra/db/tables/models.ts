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
}
