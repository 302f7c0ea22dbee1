import { type MessagePayload } from '../../protocol/envelope.js';
import { z } from 'zod';

export const boxSchema = z
  .object({
    className: z.string().trim().min(1).max(100),
    x1: z.number().min(0).max(1),
    y1: z.number().min(0).max(1),
    x2: z.number().min(0).max(1),
    y2: z.number().min(0).max(1),
  })
  .refine((b) => b.x2 > b.x1 && b.y2 > b.y1, 'x2 must exceed x1 and y2 must exceed y1 (normalised corners)');

/** Why a device sent a frame. */
export const FEEDBACK_REASONS = ['low_confidence', 'disagreement', 'manual'] as const;

export type FeedbackReason = (typeof FEEDBACK_REASONS)[number];

/** Review states of a sample. */
export const FEEDBACK_STATUSES = ['pending', 'accepted', 'rejected'] as const;

export type FeedbackStatus = (typeof FEEDBACK_STATUSES)[number];

/** Image types a device may upload feedback frames as, with the key's extension. */
export const FEEDBACK_UPLOAD_TYPES = {
  'image/jpeg': 'jpg',
  'image/png': 'png',
  'image/webp': 'webp',
} as const;

export type FeedbackUploadType = keyof typeof FEEDBACK_UPLOAD_TYPES;

/** Upload URLs per request at most (a device uploads its pending frames ten at a time). */
export const MAX_UPLOADS_PER_CALL = 10;

/** Default size cap of one uploaded feedback frame (FEEDBACK_UPLOAD_MAX_BYTES). */
export const DEFAULT_FEEDBACK_UPLOAD_MAX_BYTES = 10 * 1024 * 1024;

/** A box in normalised corners (0..1) with its class name. */
export interface ReviewedBox {
  className: string;
  x1: number;
  y1: number;
  x2: number;
  y2: number;
}

/** One frame a device sent back, and its review. */
export interface FeedbackSample {
  id: string;
  projectId: string;
  deviceId: string;
  modelVersionId: string | null;
  modelName: string | null;
  imageKey: string;
  sha256: string;
  width: number;
  height: number;
  reason: FeedbackReason;
  /** The device's detections, boxes in pixels `[x1, y1, x2, y2]`. */
  predictions: MessagePayload<'feedback.sample'>['predictions'];
  topConfidence: number | null;
  capturedAt: number;
  receivedAt: number;
  status: FeedbackStatus;
  /** Boxes kept on acceptance (corrected, or the predictions as they were). */
  boxes: ReviewedBox[] | null;
  rejectReason: string | null;
  reviewedBy: string | null;
  reviewedAt: number | null;
  /** `dataset@N` the sample went into. */
  usedIn: string | null;
}

/** A retrain plan a policy proposes; a person approves it through the agent, nothing runs on its own. */
export interface RetrainPlan {
  model: string;
  /** Dataset the accepted samples extend (its latest version). */
  dataset: string;
  /** Accepted samples not yet in a dataset version, for `toDataset`. */
  sampleIds: string[];
  /** Training configuration to reuse (from the model's latest version, or the policy). */
  config: Record<string, unknown> | null;
  /** Why the policy fired, for people. */
  reason: string;
  /** The version the retrain fine-tunes from (`<model>@production`), or null when the model has none in production (then from scratch). */
  from?: string | null;
  /** The fine-tuned version is promoted only when its mAP50 on the fixed test set beats production's by this much. */
  minImprovement?: number;
  /** The steps, in order, each needing approval. */
  steps: string[];
}

/** A proposal made when a policy fired. */
export interface RetrainProposal {
  id: string;
  projectId: string;
  model: string;
  trigger: 'min_accepted_samples' | 'confidence_drop';
  plan: RetrainPlan;
  createdAt: number;
}

/** The fields of a retrain policy (the tools take them as their input; `retrainPolicySchema` adds the rule that one trigger is set). */
export const retrainPolicyFields = z.object({
  minAcceptedSamples: z
    .number()
    .int()
    .min(1)
    .max(1_000_000)
    .optional()
    .describe('fire when this many accepted samples wait for a dataset version'),
  confidenceDropOver: z
    .object({
      tag: z.string().trim().min(1).max(100).describe('devices carrying this tag'),
      drop: z.number().gt(0).max(1).describe('fire when mean top confidence fell by more than this'),
      windowHours: z
        .number()
        .int()
        .min(1)
        .max(24 * 30)
        .default(24)
        .describe('compare the last window with the one before'),
    })
    .optional()
    .describe('confidence-drop trigger'),
  dataset: z
    .string()
    .regex(/^[a-z0-9][a-z0-9._-]{0,63}$/)
    .optional()
    .describe("dataset to extend; default: the model's training dataset"),
  config: z
    .record(z.string(), z.unknown())
    .optional()
    .describe("training configuration; default: the model's latest"),
  cooldownHours: z
    .number()
    .min(0)
    .max(24 * 90)
    .default(24)
    .describe('no new proposal for the model within this time of the last'),
  minImprovement: z
    .number()
    .min(0)
    .max(1)
    .default(0.01)
    .describe(
      "promote the retrained version only when its test mAP50 beats production's by at least this much",
    ),
});

/** A retrain policy of one model. */
export const retrainPolicySchema = retrainPolicyFields.refine(
  (p) => p.minAcceptedSamples !== undefined || p.confidenceDropOver !== undefined,
  'set minAcceptedSamples, confidenceDropOver or both',
);

export type RetrainPolicy = z.infer<typeof retrainPolicySchema>;

/** A review decision. */
export const reviewSchema = z.discriminatedUnion('decision', [
  z.object({
    decision: z.literal('accept'),
    boxes: z
      .array(boxSchema)
      .max(1000)
      .optional()
      .describe("corrected boxes; omitted keeps the device's predictions"),
  }),
  z.object({ decision: z.literal('reject'), reason: z.string().trim().min(1).max(1000) }),
]);

export type ReviewDecision = z.input<typeof reviewSchema>;
