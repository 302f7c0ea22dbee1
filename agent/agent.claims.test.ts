import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createAgentHarness, type AgentHarness } from '../evals/harness.js';

// Several serve instances share one database: a conversation runs in one of them at a time. Seen in
// the chaos soak: two instances resumed the same decided approval and both ran the graph.
describe('AgentRuntime: one instance at a time runs a conversation', () => {
  let h: AgentHarness;

  beforeEach(async () => {
    h = await createAgentHarness({});
  });
  afterEach(async () => {
    await h.close();
  });

  const claim = (threadId: string, owner: string | null, until: number | null) =>
    h.db.kysely
      .updateTable('agent_threads')
      .set({ run_owner: owner, run_lease_until: until })
      .where('id', '=', threadId)
      .execute();

  it('waits while another live instance holds the conversation, then runs it', async () => {
    const alice = h.ctx('alice', 'operator');
    const view = await h.runtime.startConversation(alice, {
      message: 'train a helmet detector on dataset helmets-v2',
    });
    expect(view.status).toBe('awaiting_approval');
    await claim(view.id, 'inst_other_serve', Date.now() + 60_000);

    let settled = false;
    const decided = h.runtime
      .decide(alice, view.id, { approvalId: view.pendingApproval!.approvalId, decision: 'approve' })
      .finally(() => (settled = true));
    await new Promise((r) => setTimeout(r, 700));
    expect(settled).toBe(false);
    expect(h.sim.jobs).toHaveLength(0);

    await claim(view.id, null, null);
    expect((await decided).status).toBe('waiting');
    expect(h.sim.jobs).toHaveLength(1);
    const row = await h.db.kysely
      .selectFrom('agent_threads')
      .select(['run_owner'])
      .where('id', '=', view.id)
      .executeTakeFirstOrThrow();
    expect(row.run_owner).toBeNull();
  });

  it('takes over a conversation whose holder died (its lease ran out)', async () => {
    const alice = h.ctx('alice', 'operator');
    const view = await h.runtime.startConversation(alice, {
      message: 'train a helmet detector on dataset helmets-v2',
    });
    await claim(view.id, 'inst_dead_serve', Date.now() - 1);
    const after = await h.runtime.decide(alice, view.id, {
      approvalId: view.pendingApproval!.approvalId,
      decision: 'approve',
    });
    expect(after.status).toBe('waiting');
    expect(h.sim.jobs).toHaveLength(1);
  });
});
