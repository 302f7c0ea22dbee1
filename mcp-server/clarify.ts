import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { z } from 'zod';
import type { Choice } from '../agent/plan.js';
import type { CallContext } from '../core/context.js';
import type { McpExtra } from './call.js';

/** Whether the client declared form elicitation (MCP 2025-06-18 `elicitation: {}` or 2025-11-25 `elicitation: { form: {} }`). */
export function canElicitForm(server: McpServer): boolean {
  return server.server.getClientCapabilities()?.elicitation?.form !== undefined;
}

/** The clarifying question as text, with its choices listed for a client that cannot be asked. */
export function clarifyText(question: string, choices: readonly Choice[]): string {
  if (choices.length === 0) return question;
  return [
    question,
    'Choices (send the quoted request to pick one):',
    ...choices.map((c, i) => `${i + 1}. ${c.label}: "${c.message}"`),
  ].join('\n');
}

/**
 * Asks the person at the client to pick one of the planner's choices (built from the catalog:
 * datasets, model versions, device tags) as a single-select enum; undefined when they declined,
 * dismissed it, or the client failed.
 */
export async function elicitChoice(
  server: McpServer,
  question: string,
  choices: readonly Choice[],
  extra: McpExtra,
  log: CallContext['log'],
): Promise<Choice | undefined> {
  const labels = choices.map((c) => c.label);
  try {
    const answer = await server.server.elicitInput(
      {
        mode: 'form',
        message: question,
        requestedSchema: {
          type: 'object',
          properties: {
            choice: { type: 'string', title: 'Choice', description: question, enum: labels },
          },
          required: ['choice'],
        },
      },
      { signal: extra.signal, timeout: 10 * 60_000 },
    );
    if (answer.action !== 'accept') return undefined;
    const parsed = z.object({ choice: z.string() }).safeParse(answer.content);
    return parsed.success ? choices.find((c) => c.label === parsed.data.choice) : undefined;
  } catch (err) {
    log.warn(
      { err: (err as Error).message },
      'elicitation of a choice failed; the question is returned as text',
    );
    return undefined;
  }
}
