import { z } from 'zod';
import { PlatformError, describeZodError } from '../core/errors.js';
import type { AnyTool } from './define.js';
import type { Risk } from '../services/approvals/policy.js';

/** A tool as JSON: what an LLM binds and what MCP lists. */
export interface ToolSchema {
  name: string;
  title: string;
  description: string;
  risk: Risk;
  idempotent: boolean;
  /** JSON Schema (draft 2020-12) of the input, as the caller writes it (defaults optional). */
  inputSchema: Record<string, unknown>;
  /** JSON Schema of the output. */
  outputSchema: Record<string, unknown>;
  /** MCP tool annotations derived from the risk. */
  annotations: { readOnlyHint: boolean; destructiveHint: boolean; idempotentHint: boolean };
}

/** The OpenAI/LangChain function-tool shape an LLM is bound with. */
export interface LlmToolSpec {
  type: 'function';
  function: { name: string; description: string; parameters: Record<string, unknown> };
}

/** The one registry of typed tools that the agent, MCP, REST and the bot share. */
export class ToolRegistry {
  private readonly tools = new Map<string, AnyTool>();
  private readonly schemas = new Map<string, ToolSchema>();

  constructor(tools: AnyTool[] = []) {
    for (const tool of tools) this.register(tool);
  }

  /** Adds a tool; a second tool with the same name is a programming error. */
  register(tool: AnyTool): this {
    if (this.tools.has(tool.name)) throw new Error(`tool ${tool.name} is registered twice`);
    this.tools.set(tool.name, tool);
    return this;
  }

  /** Every tool, in registration order. */
  list(): AnyTool[] {
    return [...this.tools.values()];
  }

  /** Names of every tool, sorted. */
  names(): string[] {
    return [...this.tools.keys()].sort();
  }

  has(name: string): boolean {
    return this.tools.has(name);
  }

  /** The tool called `name`; throws `not_found` listing the known names. */
  get(name: string): AnyTool {
    const tool = this.tools.get(name);
    if (tool === undefined) {
      throw new PlatformError(
        'not_found',
        `unknown tool "${name}"; known tools: ${this.names().join(', ')}`,
        {
          known: this.names(),
        },
      );
    }
    return tool;
  }

  /** The JSON description of one tool. */
  schema(name: string): ToolSchema {
    const cached = this.schemas.get(name);
    if (cached !== undefined) return cached;
    const tool = this.get(name);
    const schema: ToolSchema = {
      name: tool.name,
      title: tool.title,
      description: tool.description,
      risk: tool.risk,
      idempotent: tool.idempotent,
      inputSchema: jsonSchema(tool.input, 'input'),
      outputSchema: jsonSchema(tool.output, 'output'),
      annotations: {
        readOnlyHint: tool.risk === 'read',
        destructiveHint: tool.risk === 'critical',
        idempotentHint: tool.idempotent,
      },
    };
    this.schemas.set(name, schema);
    return schema;
  }

  /** JSON descriptions of every tool (MCP `tools/list`, REST). */
  jsonSchemas(): ToolSchema[] {
    return this.list().map((t) => this.schema(t.name));
  }

  /** Function specs for binding to a chat model (`model.bindTools(registry.llmTools())`). */
  llmTools(filter?: (tool: AnyTool) => boolean): LlmToolSpec[] {
    return this.list()
      .filter((t) => filter === undefined || filter(t))
      .map((t) => {
        const { $schema: _drop, ...parameters } = this.schema(t.name).inputSchema;
        const risk = t.risk === 'read' ? '' : ` [${t.risk}: runs only after a person approves it]`;
        return {
          type: 'function',
          function: { name: t.name, description: `${t.description}${risk}`, parameters },
        };
      });
  }

  /**
   * Validates raw arguments against the tool's input schema and returns them with defaults applied:
   * the exact arguments an approval binds. Throws `invalid_input` saying what is wrong and what is valid.
   */
  parseInput(name: string, raw: unknown): Record<string, unknown> {
    const tool = this.get(name);
    const parsed = tool.input.safeParse(raw ?? {});
    if (parsed.success) return parsed.data as Record<string, unknown>;
    throw new PlatformError(
      'invalid_input',
      `invalid arguments for ${name}: ${describeZodError(parsed.error)}`,
      {
        issues: parsed.error.issues.map((i) => ({ path: i.path.map(String).join('.'), message: i.message })),
        expected: this.schema(name).inputSchema,
      },
    );
  }
}

function jsonSchema(schema: z.ZodType, io: 'input' | 'output'): Record<string, unknown> {
  return z.toJSONSchema(schema, { io, unrepresentable: 'any' }) as Record<string, unknown>;
}
