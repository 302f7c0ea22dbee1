import { z } from 'zod';
import { SEARCH_KINDS } from '../services/infra/search/port.js';
import { defineTool } from './define.js';

/** Full-text search across datasets, models, jobs, devices and audit entries of the project. */
export const searchPlatform = defineTool({
  name: 'search_platform',
  title: 'Search everything',
  description:
    'Full-text search across datasets, model versions, training jobs, devices and audit entries of the project. Use it when the person names something vaguely ("the helmet run from last week") to find its exact id or name.',
  input: z.object({
    text: z.string().min(1).max(200).describe('words to look for'),
    kinds: z.array(z.enum(SEARCH_KINDS)).optional().describe('limit to these kinds of records'),
    tags: z.array(z.string()).optional().describe('only records with all these tags, e.g. line-3'),
    limit: z.number().int().min(1).max(50).default(10).describe('how many hits to return'),
  }),
  output: z.object({
    total: z.number().describe('records matching'),
    hits: z
      .array(
        z.object({
          kind: z.string().describe('dataset, model, job, device or audit'),
          id: z.string().describe('id of the record'),
          title: z.string().describe('its name or title'),
          score: z.number().describe('relevance, higher is better'),
          tags: z.array(z.string()).describe('its tags'),
        }),
      )
      .describe('best hits first'),
  }),
  risk: 'read',
  idempotent: true,
  async run(ctx, input) {
    const search = ctx.services.search;
    const r = await search.query({
      text: input.text,
      kinds: input.kinds,
      tags: input.tags,
      limit: input.limit,
      projectId: ctx.projectId,
    });
    return {
      total: r.total,
      hits: r.hits.map((h) => ({ kind: h.kind, id: h.id, title: h.title, score: h.score, tags: h.tags })),
    };
  },
});

/** Searches the log lines of one training job through the search index. */
export const searchTrainingLogsTool = defineTool({
  name: 'search_training_logs',
  title: 'Search training logs',
  description:
    'Find the log lines of a training job that contain the given words (e.g. "nan", "out of memory", "early stop"), best first, with the attempt and line they come from. The job must be in your project.',
  input: z.object({
    jobId: z.string().min(1).max(64).describe('the training job, e.g. job_…'),
    text: z.string().min(1).max(200).describe('words to look for in its log'),
    limit: z.number().int().min(1).max(100).default(20).describe('how many lines to return'),
  }),
  output: z.object({
    jobId: z.string().describe('the job searched'),
    total: z.number().describe('log lines matching'),
    lines: z
      .array(
        z.object({
          line: z.string().describe('the log line'),
          attempt: z.number().describe('attempt of the job that wrote it'),
          position: z.number().describe('its batch and line, for ordering: batch * 10000 + line'),
        }),
      )
      .describe('matching lines, best first'),
  }),
  risk: 'read',
  idempotent: true,
  async run(ctx, input) {
    // the job is looked up in the caller's project first: another project's job is "not found"
    const job = await ctx.services.training.get(ctx, input.jobId);
    const r = await ctx.services.search.query({
      text: input.text,
      kinds: ['training_log'],
      projectId: ctx.projectId,
      filters: { jobId: job.id },
      limit: input.limit,
    });
    return {
      jobId: job.id,
      total: r.total,
      lines: r.hits.map((h) => ({
        line: h.title,
        attempt: Number(h.fields.attempt ?? 0),
        position: Number(h.fields.seq ?? 0) * 10_000 + Number(h.fields.line ?? 0),
      })),
    };
  },
});
