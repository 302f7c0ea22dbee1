import { BaseChatModel, type BaseChatModelParams } from '@langchain/core/language_models/chat_models';
import { AIMessage, type BaseMessage } from '@langchain/core/messages';
import type { ChatResult } from '@langchain/core/outputs';

/** What a script answers for the messages it is given: text and/or tool calls. */
export type ChatScript = (
  messages: BaseMessage[],
  tools: unknown[],
) => { content?: string; toolCalls?: Array<{ name: string; args: Record<string, unknown> }> };

/**
 * A LangChain chat model that answers from a script, emitting real tool calls: the LLM planner
 * and the LLM evaluation path run against it without a network. It records every prompt it saw.
 */
export class ScriptedChatModel extends BaseChatModel {
  readonly prompts: BaseMessage[][] = [];
  boundTools: unknown[] = [];
  private calls = 0;

  constructor(
    private readonly script: ChatScript,
    params: BaseChatModelParams = {},
  ) {
    super(params);
  }

  _llmType(): string {
    return 'scripted';
  }

  override bindTools(tools: unknown[]): this {
    this.boundTools = tools;
    return this;
  }

  async _generate(messages: BaseMessage[]): Promise<ChatResult> {
    this.prompts.push(messages);
    const answer = this.script(messages, this.boundTools);
    this.calls += 1;
    const message = new AIMessage({
      content: answer.content ?? '',
      tool_calls: (answer.toolCalls ?? []).map((c, i) => ({
        id: `call_${this.calls}_${i}`,
        name: c.name,
        args: c.args,
        type: 'tool_call' as const,
      })),
    });
    return { generations: [{ message, text: answer.content ?? '' }] };
  }
}
