import { z } from 'zod';
import { PlatformError } from '../core/errors.js';
import { defineTool } from './define.js';

const count = z.record(z.string(), z.number());

/** What devices sent back, by reason, status, device and model, with confidence by day. */
export const feedbackSummaryTool = defineTool({
  name: 'feedback_summary',
  title: 'Feedback summary',
  description:
    'Summarise the frames devices sent back (low confidence, disagreement, manual): counts by reason, review status, device and model version, accepted samples not yet in a dataset, and mean top confidence per day and tag.',
  input: z.object({
    days: z.number().int().min(1).max(90).default(7).describe('how many days of confidence history'),
  }),
  output: z.object({
    byReason: count.describe('samples per reason'),
    byStatus: count.describe('samples per review status'),
    byDevice: count.describe('samples per device'),
    byModelVersion: count.describe('samples per model version'),
    acceptedNotInDataset: z.number().describe('accepted samples waiting to join a dataset'),
    meanConfidenceByDay: z
      .array(
        z.object({
          day: z.string().describe('YYYY-MM-DD'),
          tag: z.string().describe('device tag'),
          meanTopConfidence: z.number().describe('mean top confidence'),
          heartbeats: z.number().describe('heartbeats counted'),
        }),
      )
      .describe('confidence trend'),
  }),
  risk: 'read',
  idempotent: true,
  async run(ctx, input) {
    return ctx.services.feedback.summary(ctx, { days: input.days });
  },
});

const box = z.object({
  className: z.string().min(1).max(100).describe('class name'),
  x1: z.number().min(0).max(1).describe('left, 0..1'),
  y1: z.number().min(0).max(1).describe('top, 0..1'),
  x2: z.number().min(0).max(1).describe('right, 0..1'),
  y2: z.number().min(0).max(1).describe('bottom, 0..1'),
});

/** Accepts (optionally with corrected boxes) or rejects one feedback sample. */
export const reviewFeedbackTool = defineTool({
  name: 'review_feedback',
  title: 'Review a feedback sample',
  description:
    'Accept a feedback sample (keeping the device predictions or with corrected boxes) or reject it with a reason.',
  input: z.object({
    sampleId: z.string().min(1).max(64).describe('feedback sample id'),
    decision: z.enum(['accept', 'reject']).describe('accept or reject'),
    boxes: z
      .array(box)
      .max(1000)
      .optional()
      .describe('corrected boxes when accepting; omitted keeps the predictions'),
    reason: z.string().min(1).max(1000).optional().describe('why, required when rejecting'),
  }),
  output: z.object({
    sampleId: z.string().describe('sample id'),
    status: z.string().describe('its review status'),
  }),
  risk: 'write',
  checkAfterInterruption:
    'look at the sample in the feedback queue (feedback_summary): it is either still pending or shows the review',
  idempotent: true,
  async run(ctx, input) {
    if (input.decision === 'reject' && input.reason === undefined)
      throw new PlatformError('invalid_input', 'rejecting a sample needs a reason');
    const s = await ctx.services.feedback.review(
      ctx,
      input.sampleId,
      input.decision === 'accept'
        ? { decision: 'accept', ...(input.boxes ? { boxes: input.boxes } : {}) }
        : { decision: 'reject', reason: input.reason! },
    );
    return { sampleId: s.id, status: s.status };
  },
});

/** Turns accepted samples into a new dataset version. */
export const feedbackToDatasetTool = defineTool({
  name: 'feedback_to_dataset',
  title: 'Add feedback to a dataset',
  description:
    'Add accepted feedback samples (all waiting ones, or the listed ones) to a dataset as a new version with lineage.',
  input: z.object({
    dataset: z.string().min(1).max(200).describe('dataset name the samples join'),
    sampleIds: z.array(z.string().min(1)).max(10_000).optional().describe('only these accepted samples'),
    note: z.string().max(2000).optional().describe('note kept with the new version'),
  }),
  output: z.object({
    ref: z.string().describe('the new dataset version'),
    samples: z.number().describe('samples added'),
  }),
  risk: 'write',
  // its service records the version under the approval's idempotency key and re-claims its samples, so a crash-interrupted run is re-run safely
  resumable: true,
  idempotent: false,
  async run(ctx, input) {
    const r = await ctx.services.feedback.toDataset(ctx, input);
    return { ref: r.ref, samples: r.sampleIds.length };
  },
});

/** Every feedback tool. */
export const feedbackTools = [feedbackSummaryTool, reviewFeedbackTool, feedbackToDatasetTool];
