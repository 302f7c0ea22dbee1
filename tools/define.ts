import { z } from 'zod';
import type { CallContext } from '../core/context.js';
import type { ToolServices } from './services.js';
import type { Risk } from '../services/approvals/policy.js';

/** How much a tool can change: `read` never changes anything, `critical` touches production (deploy, rollback, promote). */
/** What `runTool` asks of the registry a tool runs in (tools/registry.ts implements it). */
export interface ToolLookup {
  has(name: string): boolean;
  names(): string[];
  get(name: string): AnyTool;
  parseInput(name: string, raw: unknown): Record<string, unknown>;
}

/** Progress a long tool reports while it runs (training epochs, rollout waves, import counts). */
export interface ToolProgress {
  message: string;
  /** 0..1 when known. */
  fraction?: number;
  data?: Record<string, unknown>;
}

/** What a tool's `run` receives: the caller's context plus the services and the registry. */
export interface ToolContext extends CallContext {
  services: ToolServices;
  registry: ToolLookup;
  /** Called by long tools with progress; front ends forward it (socket, MCP progress notifications). */
  onProgress?: (progress: ToolProgress) => void;
}

/** A long step a tool started: the agent pauses the conversation until it ends. */
export interface ToolWait {
  kind: 'job' | 'rollout';
  id: string;
}

/** A typed tool: what it does for an LLM, zod schemas in and out, its risk, and how it runs. */
export interface ToolDefinition<I extends z.ZodObject = z.ZodObject, O extends z.ZodType = z.ZodType> {
  /** snake_case, unique in the registry. */
  name: string;
  /** Short human title (MCP, UI). */
  title: string;
  /** Written for an LLM: when to use it, what it returns. */
  description: string;
  input: I;
  output: O;
  risk: Risk;
  /** True when running it twice with the same input changes nothing more than running it once. */
  idempotent: boolean;
  /**
   * Set on tools whose service enforces the caller's authority itself (deciding an approval): they
   * need no separate approval request, and the agent never runs them on its own.
   */
  authorizesItself?: true;
  /**
   * Set on write tools whose services honour `ctx.idempotencyKey` (they record what they create under
   * it and return it on a retry): a run interrupted by a crash is re-run under the same key. Other
   * write tools are marked interrupted instead, with `checkAfterInterruption` telling what to check.
   */
  resumable?: true;
  /** For write tools that are not resumable: what a person should check after a crash interrupted a run. */
  checkAfterInterruption?: string;
  run(ctx: ToolContext, input: z.output<I>): Promise<z.input<O>>;
  /** For tools that start long work: which job or rollout the agent should wait for. */
  waitFor?(output: z.output<O>): ToolWait | undefined;
}

/** Any registered tool, for lists and lookups. */
export type AnyTool = ToolDefinition<z.ZodObject<any>, z.ZodType>;

const NAME = /^[a-z][a-z0-9]*(_[a-z0-9]+)*$/;

/** Declares a tool; throws at start-up when the name is not snake_case or a field has no `.describe()`. */
export function defineTool<I extends z.ZodObject, O extends z.ZodType>(
  def: ToolDefinition<I, O>,
): ToolDefinition<I, O> {
  if (!NAME.test(def.name))
    throw new Error(`tool name "${def.name}" must be snake_case (e.g. list_datasets)`);
  if (def.description.trim().length < 20)
    throw new Error(`tool ${def.name}: the description must tell an LLM when to use it`);
  const missing = undescribedFields(def.input, 'input').concat(undescribedFields(def.output, 'output'));
  if (missing.length > 0)
    throw new Error(`tool ${def.name}: every field needs .describe(); missing on ${missing.join(', ')}`);
  return def;
}

/** Paths of object fields without a description, looking through optional/default/nullable/array wrappers. */
function undescribedFields(schema: z.ZodType, path: string): string[] {
  const inner = unwrap(schema);
  if (inner instanceof z.ZodObject) {
    return Object.entries(inner.shape as Record<string, z.ZodType>).flatMap(([key, field]) => {
      const here = `${path}.${key}`;
      return [...(describedAnywhere(field) ? [] : [here]), ...undescribedFields(field, here)];
    });
  }
  if (inner instanceof z.ZodArray) return undescribedFields(inner.element as z.ZodType, `${path}[]`);
  return [];
}

function describedAnywhere(schema: z.ZodType): boolean {
  let current: z.ZodType | undefined = schema;
  while (current !== undefined) {
    if (current.description) return true;
    current = unwrapOnce(current);
  }
  return false;
}

function unwrapOnce(schema: z.ZodType): z.ZodType | undefined {
  if (schema instanceof z.ZodOptional || schema instanceof z.ZodNullable || schema instanceof z.ZodDefault) {
    return schema.unwrap() as z.ZodType;
  }
  return undefined;
}

function unwrap(schema: z.ZodType): z.ZodType {
  let current = schema;
  for (let next = unwrapOnce(current); next !== undefined; next = unwrapOnce(current)) current = next;
  return current;
}
