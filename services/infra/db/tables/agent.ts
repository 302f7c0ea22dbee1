/** Tables of the agent: LangGraph checkpoints, channel blobs and pending writes, and one row per conversation thread. */
export interface AgentTables {
  agent_checkpoints: {
    thread_id: string;
    checkpoint_ns: string;
    /** uuid6, sortable by time. */
    checkpoint_id: string;
    parent_checkpoint_id: string | null;
    /** Serializer type of `checkpoint` (`json` or `bytes`). */
    checkpoint_type: string;
    checkpoint: Buffer;
    metadata_type: string;
    metadata: Buffer;
    created_at: number;
  };
  /** Channel values stored once per (channel, version), shared by the checkpoints that did not change them. */
  agent_checkpoint_blobs: {
    thread_id: string;
    checkpoint_ns: string;
    channel: string;
    version: string;
    /** Serializer type, or `empty` when the channel had no value at this version. */
    value_type: string;
    value: Buffer | null;
  };
  agent_checkpoint_writes: {
    thread_id: string;
    checkpoint_ns: string;
    checkpoint_id: string;
    task_id: string;
    /** Position in the task's writes; negative for special channels (errors, interrupts). */
    idx: number;
    task_path: string;
    channel: string;
    value_type: string;
    value: Buffer;
  };
  agent_threads: {
    /** Thread id = conversation id. */
    id: string;
    project_id: string;
    user_id: string;
    title: string;
    /** `running`, `awaiting_approval`, `waiting`, `done`, `stopped`, `failed`. */
    status: string;
    /** What a durable wait waits for: `job` or `rollout`, null when not waiting. */
    wait_kind: string | null;
    wait_id: string | null;
    /** The pending approval request, when awaiting one. */
    approval_id: string | null;
    created_at: number;
    updated_at: number;
    /** The serve instance running this conversation's graph now, null when none. */
    run_owner?: string | null;
    /** Until when `run_owner` holds the conversation unless it renews (epoch ms). */
    run_lease_until?: number | null;
  };
}
