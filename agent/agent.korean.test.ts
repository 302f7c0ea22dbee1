import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createAgentHarness, type AgentHarness } from '../evals/harness.js';

describe('AgentRuntime replies in the language of the request', () => {
  let dir: string;
  let h: AgentHarness;

  beforeEach(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'vagent-ko-'));
    h = await createAgentHarness({ file: path.join(dir, 'agent.db') });
  });

  afterEach(async () => {
    await h.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('answers a Korean question in Korean, with counts and thousands separators, and an English one in English', async () => {
    const alice = h.ctx('alice', 'operator');
    const ko = await h.runtime.startConversation(alice, { message: '데이터셋 목록 보여줘' });
    expect(ko.status).toBe('done');
    expect(ko.report!.split('\n')).toEqual([
      '데이터셋 2개를 찾았습니다:',
      '- helmets-demo: 이미지 200장',
      '- helmets-v2: 이미지 1,200장',
    ]);

    const en = await h.runtime.startConversation(alice, { message: 'list datasets' });
    expect(en.report!.split('\n')).toEqual([
      'Found 2 datasets:',
      '- helmets-demo: 200 images',
      '- helmets-v2: 1,200 images',
    ]);
  });

  it('reports a Korean train-and-deploy request in Korean, naming who approved and how many devices changed', async () => {
    const alice = h.ctx('alice', 'operator');
    const bob = h.ctx('bob', 'approver');
    let view = await h.runtime.startConversation(alice, {
      message: 'helmets-v2 데이터셋으로 학습하고 3번 라인에 배포해줘',
    });
    view = await h.runtime.decide(alice, view.id, {
      approvalId: view.pendingApproval!.approvalId,
      decision: 'approve',
    });
    h.sim.finishJob(h.sim.jobs[0]!.id, true, 0.84);
    await h.runtime.settled();
    view = await h.runtime.getThread(alice, view.id);
    view = await h.runtime.decide(bob, view.id, {
      approvalId: view.pendingApproval!.approvalId,
      decision: 'approve',
    });
    h.sim.finishRollout(h.sim.rollouts[0]!.id);
    await h.runtime.settled();
    view = await h.runtime.getThread(alice, view.id);
    expect(view.status).toBe('done');
    expect(view.report).toMatch(/^완료: 2단계 중 2단계를 마쳤습니다\./);
    expect(view.report).toMatch(/alice\(operator\) 님이 승인/);
    expect(view.report).toMatch(/bob\(approver\) 님이 승인/);
    expect(view.report).toMatch(/장치 2대 중 2대 업데이트됨/);
    expect(view.report).not.toMatch(/steps completed|approved by|devices updated/);
  });

  it('refuses an unsupported Korean request in Korean and an English one in English', async () => {
    const alice = h.ctx('alice', 'operator');
    const ko = await h.runtime.startConversation(alice, { message: 'helmets-v2 데이터셋 삭제해줘' });
    expect(ko.report).toMatch(/작업은 할 수 없습니다/);
    expect(ko.report).not.toMatch(/I can't/);
    const en = await h.runtime.startConversation(alice, { message: 'delete dataset helmets-v2' });
    expect(en.report).toMatch(/^I can't delete anything/);
  });
});
