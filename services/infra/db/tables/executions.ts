/** Executions of approved tool calls and the effects services created under an idempotency key. */
export interface ExecutionTables {
  /** One row per approval that started running its tool. */
  tool_executions: {
    approval_id: string;
    project_id: string;
    tool: string;
    thread_id: string | null;
    args_hash: string;
    /** `started` until the outcome is recorded; `interrupted` when a crash left it unknown and the tool cannot be re-run safely. */
    status: 'started' | 'finished' | 'failed' | 'interrupted';
    /** 1 for the first run, +1 for each resumption after a crash. */
    attempt: number;
    /** The process running it (random per process start). */
    instance_id: string;
    /** The running process renews this while the tool runs; past it, the run is taken to have died with its process. */
    lease_until: number;
    /** JSON of the validated output when finished. */
    output: string | null;
    /** JSON of the ToolError when failed or interrupted. */
    error: string | null;
    started_at: number;
    finished_at: number | null;
  };
  /** What a service created under an idempotency key (kind + JSON reference), so a retry returns it instead of acting again. */
  idempotent_effects: {
    idempotency_key: string;
    kind: string;
    project_id: string;
    ref: string;
    created_at: number;
  };
}
