import { describe, expect, it } from 'vitest';
import type { ThreadView } from '../../agent/runtime.js';
import { conversationBlocks } from './bot.js';

describe('conversationBlocks', () => {
  const view = (over: Partial<ThreadView>): ThreadView =>
    ({
      id: 'thr_1',
      status: 'done',
      report: null,
      pendingApproval: null,
      plan: null,
      steps: [],
      ...over,
    }) as ThreadView;

  it('offers one button per clarifying choice, each sending its request in the same conversation', () => {
    const out = conversationBlocks(
      view({
        status: 'clarify',
        report: 'Which model version should I deploy? Known: helmets@2, helmets@3.',
        plan: {
          steps: [],
          clarify: 'Which model version should I deploy?',
          choices: [
            { label: 'helmets@3 (candidate)', message: 'deploy it (model helmets@3)' },
            { label: 'helmets@2 (production)', message: 'deploy it (model helmets@2)' },
          ],
        },
      }),
    );
    expect(out.text).toBe('Which model version should I deploy? Known: helmets@2, helmets@3.');
    const actions = out.blocks[1] as {
      type: string;
      elements: Array<{ action_id: string; text: { text: string }; value: string }>;
    };
    expect(actions.type).toBe('actions');
    expect(actions.elements.map((e) => e.text.text)).toEqual([
      'helmets@3 (candidate)',
      'helmets@2 (production)',
    ]);
    expect(actions.elements.map((e) => [e.action_id, JSON.parse(e.value)])).toEqual([
      ['choose', { t: 'thr_1', m: 'deploy it (model helmets@3)' }],
      ['choose', { t: 'thr_1', m: 'deploy it (model helmets@2)' }],
    ]);
  });

  it('shows no buttons for an answer, and points at the approval when one waits', () => {
    expect(conversationBlocks(view({ report: 'There are 2 datasets.' })).blocks).toHaveLength(1);
    const waiting = conversationBlocks(
      view({
        status: 'awaiting_approval',
        pendingApproval: { approvalId: 'apr_1', tool: 'start_rollout' } as ThreadView['pendingApproval'],
      }),
    );
    expect(waiting.text).toBe('Waiting for approval `apr_1` of start_rollout: `/vision approve apr_1`');
  });
});
