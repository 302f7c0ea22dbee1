/** Devices, their tags, rollouts and the per-device deployments of each rollout. */
export interface FleetTables {
  devices: {
    /** The id the device reports (`^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$`). */
    id: string;
    project_id: string;
    name: string;
    /** JSON array of tags, mirrored in `device_tags` for queries. */
    tags: string;
    hardware: string;
    /** JSON object of runtime name → version. */
    runtime: string;
    provider: string;
    model_version_id: string | null;
    previous_model_version_id: string | null;
    state: 'idle' | 'serving' | 'loading' | 'building' | 'error';
    fps: number;
    latency_p50_ms: number;
    latency_p95_ms: number;
    mean_top_confidence: number | null;
    cpu_percent: number;
    memory_mb: number;
    temperature_c: number | null;
    build_progress: number | null;
    first_seen_at: number;
    last_heartbeat_at: number;
    updated_at: number;
  };
  /** One heartbeat's figures per row, kept a day (the device page's sparklines). */
  device_samples: {
    device_id: string;
    at: number;
    fps: number;
    latency_p95_ms: number;
    mean_top_confidence: number | null;
  };
  device_tags: {
    device_id: string;
    project_id: string;
    tag: string;
  };
  rollouts: {
    id: string;
    project_id: string;
    model_version_id: string;
    /** `name@N` of the version rolled out. */
    model_ref: string;
    model_name: string;
    /** JSON `RolloutTarget`. */
    target: string;
    /** JSON `RolloutStrategy`. */
    strategy: string;
    /** JSON `RolloutGates`. */
    gates: string;
    /** JSON `OfflinePolicy`. */
    offline_policy: string;
    state: 'pending' | 'canary' | 'waves' | 'completed' | 'paused' | 'rolled_back' | 'failed';
    /** The state a paused rollout resumes into. */
    paused_from: string | null;
    /** 0 is the canary, 1.. the waves. */
    current_wave: number;
    wave_count: number;
    /** Why it paused, failed or rolled back. */
    reason: string | null;
    created_by: string;
    thread_id: string | null;
    created_at: number;
    updated_at: number;
    started_at: number | null;
    finished_at: number | null;
  };
  rollout_deployments: {
    /** The deploymentId devices see; they apply each one at most once. */
    id: string;
    rollout_id: string;
    project_id: string;
    device_id: string;
    device_name: string;
    wave: number;
    /** Order within the rollout. */
    position: number;
    state: 'pending' | 'sent' | 'healthy' | 'failed' | 'rolled_back' | 'skipped';
    /** Last `device.health` state the device reported for this deployment. */
    device_state: string | null;
    message: string | null;
    previous_model_version_id: string | null;
    /** Mean top confidence of the device on its previous model when the command was sent. */
    baseline_confidence: number | null;
    /** p95 latency the device reported with its healthy report. */
    latency_p95_ms: number | null;
    /** Heartbeats on the new model after the switch: sums and counts for the gates. */
    conf_sum: number;
    conf_count: number;
    latency_sum: number;
    latency_count: number;
    /** When the device was first found offline while due. */
    waiting_since: number | null;
    sent_at: number | null;
    healthy_at: number | null;
    /** When every gate passed for this device. */
    verified_at: number | null;
    finished_at: number | null;
    updated_at: number;
  };
}
