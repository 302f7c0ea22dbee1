import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createAgentHarness, type AgentHarness } from '../evals/harness.js';
import { isPlatformError } from '../core/errors.js';

describe('AgentRuntime under APPROVAL_STRICT: an edited critical step waits for another approver', () => {
  let dir: string;
  let h: AgentHarness;

  beforeEach(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'vagent-4eyes-'));
    h = await createAgentHarness({ file: path.join(dir, 'agent.db'), strict: true });
  });
  afterEach(async () => {
    await h.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('the editor cannot approve the edited rollout; the conversation waits on the new request and runs the edit once someone else approves', async () => {
    const alice = h.ctx('alice', 'operator');
    const mallory = h.ctx('mallory', 'approver');
    const bob = h.ctx('bob', 'approver');
    let view = await h.runtime.startConversation(alice, {
      message: 'train a helmet detector on dataset helmets-v2 and deploy it to line 3 Jetsons',
    });
    view = await h.runtime.decide(alice, view.id, {
      approvalId: view.pendingApproval!.approvalId,
      decision: 'approve',
    });
    h.sim.finishJob(h.sim.jobs[0]!.id, true, 0.84);
    await h.runtime.settled();
    view = await h.runtime.getThread(alice, view.id);
    const first = view.pendingApproval!;
    expect(first.tool).toBe('start_rollout');

    const args = { ...first.args, target: { tag: 'line-2' } };
    view = await h.runtime.decide(mallory, view.id, { approvalId: first.approvalId, decision: 'edit', args });
    expect(view.status).toBe('awaiting_approval');
    const next = view.pendingApproval!;
    expect(next.approvalId).not.toBe(first.approvalId);
    expect(next.args).toMatchObject({ target: { tag: 'line-2' } });
    expect(h.sim.rollouts).toHaveLength(0);

    await expect(
      h.runtime.decide(mallory, view.id, { approvalId: next.approvalId, decision: 'approve' }),
    ).rejects.toSatisfy((e) => isPlatformError(e, 'forbidden'));
    expect(h.sim.rollouts).toHaveLength(0);

    view = await h.runtime.decide(bob, view.id, { approvalId: next.approvalId, decision: 'approve' });
    expect(view.status).toBe('waiting');
    expect(h.sim.rollouts).toHaveLength(1);
    expect(h.sim.rollouts[0]).toMatchObject({ target: 'line-2' });
  });
});
