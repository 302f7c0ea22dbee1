/** Feedback samples from devices, hourly confidence per tag, retrain policies and their proposals. */
export interface FeedbackTables {
  feedback_samples: {
    id: string;
    project_id: string;
    device_id: string;
    model_version_id: string | null;
    /** Model name of the version, when the registry knew it at intake. */
    model_name: string | null;
    /** Storage key under `feedback/<deviceId>/`; unique, so a sample announced twice is kept once. */
    image_key: string;
    sha256: string;
    width: number;
    height: number;
    reason: 'low_confidence' | 'disagreement' | 'manual';
    /** JSON array of the device's predictions `{ box: [x1,y1,x2,y2] px, classId, className, score }`. */
    predictions: string;
    top_confidence: number | null;
    captured_at: number;
    received_at: number;
    status: 'pending' | 'accepted' | 'rejected';
    /** JSON array of reviewed boxes `{ className, x1, y1, x2, y2 }` (normalised corners) once accepted. */
    boxes: string | null;
    reject_reason: string | null;
    reviewed_by: string | null;
    reviewed_at: number | null;
    /** `dataset@N` the sample went into, or `claim:<token>` while a dataset version is being made. */
    used_in: string | null;
    used_at: number | null;
  };
  feedback_confidence: {
    project_id: string;
    tag: string;
    /** Start of the hour (epoch ms). */
    hour_start: number;
    conf_sum: number;
    conf_count: number;
  };
  feedback_policies: {
    project_id: string;
    model_name: string;
    /** JSON `RetrainPolicy`. */
    policy: string;
    updated_by: string;
    updated_at: number;
  };
  feedback_proposals: {
    id: string;
    project_id: string;
    model_name: string;
    /** Which rule fired: `min_accepted_samples` or `confidence_drop`. */
    trigger_kind: string;
    /** JSON `RetrainPlan`. */
    plan: string;
    created_at: number;
  };
}
