import { z } from 'zod';
import { PlatformError } from '../core/errors.js';

/** One planned tool call. Argument strings of the form `$steps.N.path` refer to the output of an earlier step. */
export const planStepSchema = z.object({
  tool: z.string().min(1).describe('snake_case tool name from the registry'),
  args: z
    .record(z.string(), z.unknown())
    .describe('arguments of the tool; "$steps.N.output.x" or "$steps.N.result.x" refer to step N (0-based)'),
  reason: z.string().min(1).max(300).describe('one line saying why this step is needed'),
  when: z
    .object({
      ref: z
        .string()
        .describe('"$steps.N.output.x" or "$steps.N.result.x": the step runs only when this value is true'),
      otherwise: z
        .string()
        .min(1)
        .max(500)
        .describe('why the plan stops when it is not: text, or a "$steps.N.output.x" reference'),
    })
    .optional()
    .describe('a condition checked when the step is reached; when it does not hold the plan stops there'),
});
export type PlanStep = z.infer<typeof planStepSchema>;

/** One answer a person can pick instead of typing: shown as a button; picking it sends `message`. */
export const choiceSchema = z.object({
  label: z.string().min(1).max(120).describe('what the button says, e.g. "helmets@3 (candidate)"'),
  message: z.string().min(1).max(500).describe('the request sent when the person picks it'),
});
export type Choice = z.infer<typeof choiceSchema>;

/** What every planner returns: ordered steps, and/or a direct reply, or a clarifying question. */
export const planSchema = z.object({
  steps: z.array(planStepSchema).max(20).describe('tool calls in order; empty when answering or asking'),
  reply: z
    .string()
    .optional()
    .describe('a direct answer when no tool is needed, or a note shown with the plan'),
  clarify: z
    .string()
    .optional()
    .describe('a question back to the person when the request is ambiguous; then no steps'),
  choices: z
    .array(choiceSchema)
    .max(12)
    .optional()
    .describe('answers to the clarifying question a person can pick (built from the catalog)'),
});
export type Plan = z.infer<typeof planSchema>;

/** What is known about an executed step, for references and the report. */
export interface StepOutcome {
  output?: unknown;
  /** What the wait that followed the step ended with (a finished job or rollout). */
  result?: unknown;
}

const REF = /^\$steps\.(\d+)\.(output|result)((?:\.[A-Za-z0-9_]+)*)$/;

/** True when `value` is a reference to an earlier step's output. */
export function isStepRef(value: unknown): value is string {
  return typeof value === 'string' && REF.test(value);
}

/** Replaces `$steps.N.…` references in `args` with values from `outcomes`; throws `invalid_input` naming an unresolved one. */
export function resolveArgs(
  args: Record<string, unknown>,
  outcomes: ReadonlyArray<StepOutcome | undefined>,
): Record<string, unknown> {
  const resolve = (value: unknown): unknown => {
    if (typeof value === 'string') {
      const m = REF.exec(value);
      if (m === null) return value;
      const outcome = outcomes[Number(m[1])];
      let current: unknown = outcome?.[m[2] as 'output' | 'result'];
      for (const key of (m[3] ?? '').split('.').filter(Boolean)) {
        current =
          current !== null && typeof current === 'object'
            ? (current as Record<string, unknown>)[key]
            : undefined;
      }
      if (current === undefined) {
        throw new PlatformError(
          'invalid_input',
          `step argument ${value} has no value: step ${Number(m[1]) + 1} did not produce it`,
        );
      }
      return current;
    }
    if (Array.isArray(value)) return value.map(resolve);
    if (value !== null && typeof value === 'object')
      return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, resolve(v)]));
    return value;
  };
  return resolve(args) as Record<string, unknown>;
}

/** Readable form of arguments for people: references shown as "(from step N)". */
export function describeArgs(args: Record<string, unknown>): string {
  return Object.entries(args)
    .map(([k, v]) => {
      if (isStepRef(v)) return `${k}=(from step ${Number(/^\$steps\.(\d+)/.exec(v)![1]) + 1})`;
      return `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`;
    })
    .join(', ');
}

/** Whether a step's `when` condition holds, judged on the outcomes of the steps before it; `why` says why the plan stops when not. */
export function conditionOf(
  step: PlanStep,
  outcomes: ReadonlyArray<StepOutcome | undefined>,
): { holds: true } | { holds: false; why: string } {
  if (step.when === undefined) return { holds: true };
  let value: unknown;
  try {
    value = resolveArgs({ v: step.when.ref }, outcomes).v;
  } catch (err) {
    return { holds: false, why: (err as Error).message };
  }
  if (value === true) return { holds: true };
  let why: unknown = step.when.otherwise;
  try {
    why = resolveArgs({ v: step.when.otherwise }, outcomes).v;
  } catch {
    // the stop message names a value that is missing: the text itself still says which condition
  }
  return { holds: false, why: typeof why === 'string' ? why : JSON.stringify(why) };
}
