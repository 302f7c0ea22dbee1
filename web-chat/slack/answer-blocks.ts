import { languageOf, stepResults } from '../../agent/index.js';
import type { ThreadView } from '../../agent/runtime.js';

/** Slack allows 50 blocks a message and 10 fields a section. */
const MAX_BLOCKS = 50;
const MAX_FIELDS = 10;

/** Escapes text for Slack mrkdwn. */
export function escapeMrkdwn(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/**
 * The answer to a question in Block Kit: per read step a heading section, one section per item
 * (its name in bold, its figures as fields), and a context line when the list was cut. Null when
 * the conversation is not a finished read-only answer (the report text is the answer then).
 */
export function answerBlocks(view: ThreadView): unknown[] | null {
  const reads = view.steps;
  if (view.status !== 'done' || reads.length === 0) return null;
  if (!reads.every((s) => s.risk === 'read' && s.state === 'done')) return null;
  const lng = languageOf(view.message);
  const blocks: unknown[] = [];
  for (const step of reads) {
    const results = stepResults(step, lng);
    if (results === null) return null;
    const heading = [
      reads.length > 1 ? `${step.index + 1}. ${step.reason || step.tool}` : null,
      results.heading,
    ]
      .filter((l): l is string => l !== null)
      .map((l) => `*${escapeMrkdwn(l)}*`)
      .join('\n');
    if (heading !== '') blocks.push({ type: 'section', text: { type: 'mrkdwn', text: heading } });
    for (const item of results.items) {
      blocks.push({
        type: 'section',
        text: { type: 'mrkdwn', text: `*${escapeMrkdwn(item.label)}*` },
        ...(item.details.length > 0
          ? {
              fields: item.details
                .slice(0, MAX_FIELDS)
                .map((d) => ({ type: 'mrkdwn', text: escapeMrkdwn(d.slice(0, 1900)) })),
            }
          : {}),
      });
    }
    if (results.more !== null)
      blocks.push({ type: 'context', elements: [{ type: 'mrkdwn', text: escapeMrkdwn(results.more) }] });
    if (reads.length > 1) blocks.push({ type: 'divider' });
  }
  if (view.plan?.reply)
    blocks.push({ type: 'section', text: { type: 'mrkdwn', text: escapeMrkdwn(view.plan.reply) } });
  return blocks.length > 0 && blocks.length <= MAX_BLOCKS ? blocks : null;
}
