import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { z } from 'zod';

/** A Chat Completions request as the server received it (the fields a script reads). */
export const chatRequestSchema = z
  .object({
    model: z.string(),
    messages: z.array(
      z
        .object({ role: z.string(), content: z.unknown().optional(), tool_calls: z.unknown().optional() })
        .passthrough(),
    ),
    tools: z
      .array(
        z.object({
          type: z.literal('function'),
          function: z.object({
            name: z.string(),
            description: z.string().optional(),
            parameters: z.unknown().optional(),
          }),
        }),
      )
      .optional(),
    tool_choice: z.unknown().optional(),
    stream: z.boolean().optional(),
    stream_options: z.object({ include_usage: z.boolean().optional() }).passthrough().optional(),
    temperature: z.number().optional(),
  })
  .passthrough();
export type ChatRequest = z.infer<typeof chatRequestSchema>;

/** What the script answers: text, tool calls (arguments as an object, or a raw string to send malformed JSON), a refusal, an HTTP error, or a delay. */
export interface ScriptedReply {
  content?: string;
  toolCalls?: Array<{ name: string; arguments: Record<string, unknown> | string }>;
  refusal?: string;
  /** Answer with this HTTP status and an OpenAI-style error body instead. */
  status?: number;
  /** Wait this long before answering (timeouts). */
  delayMs?: number;
}

/** Answers one request; `n` counts requests from 1. */
export type ServerScript = (request: ChatRequest, n: number) => ScriptedReply | Promise<ScriptedReply>;

/** A running scripted server. */
export interface ScriptedOpenAiServer {
  /** Base URL for OPENAI_BASE_URL, ending in /v1. */
  url: string;
  /** Every request received, parsed. */
  requests: ChatRequest[];
  close(): Promise<void>;
}

/**
 * A local OpenAI-compatible HTTP server answering Chat Completions from a script, with tool calls
 * and server-sent-event streaming as the OpenAI API sends them: what the LLM planner is tested
 * against through the real @langchain/openai client, with no network beyond 127.0.0.1.
 */
export async function startScriptedOpenAiServer(script: ServerScript): Promise<ScriptedOpenAiServer> {
  const requests: ChatRequest[] = [];
  const server: Server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      if (!res.headersSent)
        send(res, 500, { error: { message: (err as Error).message, type: 'server_error' } });
      else res.end();
    });
  });
  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://x');
    if (req.method === 'GET' && url.pathname.endsWith('/models'))
      return send(res, 200, {
        object: 'list',
        data: [{ id: 'scripted', object: 'model', owned_by: 'evals' }],
      });
    if (req.method !== 'POST' || !url.pathname.endsWith('/chat/completions'))
      return send(res, 404, {
        error: { message: `no route ${req.method} ${url.pathname}`, type: 'invalid_request_error' },
      });
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const parsed = chatRequestSchema.safeParse(JSON.parse(Buffer.concat(chunks).toString('utf8')));
    if (!parsed.success)
      return send(res, 400, { error: { message: parsed.error.message, type: 'invalid_request_error' } });
    requests.push(parsed.data);
    const reply = await script(parsed.data, requests.length);
    if (reply.delayMs) await new Promise((r) => setTimeout(r, reply.delayMs));
    if (res.destroyed) return;
    if (reply.status !== undefined && reply.status >= 400)
      return send(res, reply.status, {
        error: {
          message: `scripted ${reply.status}`,
          type: reply.status === 429 ? 'rate_limit_error' : 'server_error',
        },
      });
    const id = `chatcmpl-${requests.length}`;
    const created = Math.floor(Date.now() / 1000);
    const toolCalls = (reply.toolCalls ?? []).map((t, i) => ({
      id: `call_${requests.length}_${i}`,
      type: 'function' as const,
      function: {
        name: t.name,
        arguments: typeof t.arguments === 'string' ? t.arguments : JSON.stringify(t.arguments),
      },
    }));
    const finish = toolCalls.length > 0 ? 'tool_calls' : 'stop';
    const usage = { prompt_tokens: 10, completion_tokens: 5, total_tokens: 15 };
    if (parsed.data.stream !== true) {
      return send(res, 200, {
        id,
        object: 'chat.completion',
        created,
        model: parsed.data.model,
        choices: [
          {
            index: 0,
            message: {
              role: 'assistant',
              content: reply.content ?? null,
              refusal: reply.refusal ?? null,
              ...(toolCalls.length > 0 ? { tool_calls: toolCalls } : {}),
            },
            finish_reason: finish,
            logprobs: null,
          },
        ],
        usage,
      });
    }
    res.writeHead(200, {
      'content-type': 'text/event-stream',
      'cache-control': 'no-cache',
      connection: 'keep-alive',
    });
    const event = (delta: Record<string, unknown>, finishReason: string | null = null) =>
      res.write(
        `data: ${JSON.stringify({ id, object: 'chat.completion.chunk', created, model: parsed.data.model, choices: [{ index: 0, delta, finish_reason: finishReason, logprobs: null }] })}\n\n`,
      );
    event({ role: 'assistant', content: '' });
    // Text and arguments arrive in pieces, as a real server streams them.
    for (const piece of (reply.content ?? '').match(/.{1,12}/gs) ?? []) event({ content: piece });
    if (reply.refusal !== undefined) event({ refusal: reply.refusal });
    toolCalls.forEach((t, index) => {
      event({
        tool_calls: [
          { index, id: t.id, type: 'function', function: { name: t.function.name, arguments: '' } },
        ],
      });
      for (const piece of t.function.arguments.match(/.{1,16}/gs) ?? [])
        event({ tool_calls: [{ index, function: { arguments: piece } }] });
    });
    event({}, finish);
    if (parsed.data.stream_options?.include_usage)
      res.write(
        `data: ${JSON.stringify({ id, object: 'chat.completion.chunk', created, model: parsed.data.model, choices: [], usage })}\n\n`,
      );
    res.end('data: [DONE]\n\n');
  };
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/v1`,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

function send(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}
