/** Training jobs, their per-epoch metrics, and the GPU runners that advertise themselves. */
export interface TrainingTables {
  training_jobs: {
    id: string;
    project_id: string;
    /** Model name the resulting version is registered under. */
    name: string;
    dataset_name: string;
    dataset_version: number;
    /** TrainConfig as JSON. */
    config: string;
    backend: string;
    status: 'queued' | 'assigned' | 'running' | 'succeeded' | 'failed' | 'cancelled';
    runner_id: string | null;
    attempt: number;
    max_attempts: number;
    requested_by: string;
    thread_id: string | null;
    message: string | null;
    epochs: number;
    epochs_done: number;
    /** Metrics of the last finished epoch as JSON, null before the first. */
    last_metrics: string | null;
    /** JSON array of the last log lines of the current attempt. */
    log_tail: string;
    /** Highest `train.log` batch sequence applied for the current attempt, -1 before the first. */
    log_seq: number;
    model_version_id: string | null;
    created_at: number;
    updated_at: number;
    assigned_at: number | null;
    started_at: number | null;
    finished_at: number | null;
    /** Last sign of life of the runner for this job (heartbeat naming it, status, log or metrics). */
    last_seen_at: number | null;
  };
  training_metrics: {
    job_id: string;
    attempt: number;
    epoch: number;
    epochs: number;
    /** JSON object of metric name → number. */
    metrics: string;
    at: number;
  };
  training_runners: {
    id: string;
    /** JSON array of backends. */
    backends: string;
    /** JSON of the runner's device description. */
    device: string;
    version: string | null;
    /** The job this runner is reserved for, null when free. */
    busy_job_id: string | null;
    last_seen_at: number;
  };
}
