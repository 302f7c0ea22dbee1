import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js';
import { ResourceUpdatedNotificationSchema } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../app/config.js';
import { PlatformError } from '../core/errors.js';
import { silentLogger } from '../core/log.js';
import { createPlatform, type Platform } from '../app/platform.js';
import type { EpochMetrics, TrainingJob } from '../services/training/index.js';
import { createMcpServer, type McpSession } from './server.js';
import type { McpServices } from './services.js';
import { mcpServicesOf } from '../app/wiring.js';

describe(createMcpServer.name, () => {
  let dir: string;
  let platform: Platform;
  const sessions: McpSession[] = [];

  // A job that another process (the server running the training consumer) moves along in the database.
  const job = { id: 'job_remote', status: 'running', attempt: 1, epochs: 3, epochsDone: 0 } as TrainingJob;
  const metrics: EpochMetrics[] = [];
  const training: NonNullable<McpServices['training']> = {
    get: async (_ctx, id) => {
      if (id !== job.id) throw new PlatformError('not_found', `training job "${id}" not found`);
      return { ...job };
    },
    list: async () => [{ ...job }],
    metrics: async () => [...metrics],
  };

  async function connect(): Promise<Client> {
    const session = createMcpServer({
      services: mcpServicesOf(platform, { training }),
      principal: { userId: 'u1', email: 'u1@example.test', name: 'u1', role: 'viewer', kind: 'user' },
      projectId: 'default',
      resourcePollMs: 100,
    });
    sessions.push(session);
    const [a, b] = InMemoryTransport.createLinkedPair();
    await session.server.connect(a);
    const client = new Client({ name: 'in-memory', version: '1.0.0' });
    await client.connect(b);
    return client;
  }

  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'via-mcp-srv-'));
    platform = await createPlatform(
      loadConfig({ DATA_DIR: dir, LOG_LEVEL: 'silent', DEMO_DATASET: 'false' }, dir),
      silentLogger(),
    );
    await platform.prepare();
  });

  afterAll(async () => {
    for (const s of sessions) await s.close();
    await platform?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('reads a job with its metrics and notifies a subscriber of changes made elsewhere (no local event)', async () => {
    const client = await connect();
    const read = await client.readResource({ uri: 'visioninapp://jobs/job_remote' });
    expect(JSON.parse((read.contents[0] as { text: string }).text)).toMatchObject({
      job: { id: 'job_remote', status: 'running' },
      metrics: [],
    });
    await expect(client.readResource({ uri: 'visioninapp://jobs/job_nope' })).rejects.toMatchObject({
      code: -32002,
    });

    const updates: string[] = [];
    client.setNotificationHandler(ResourceUpdatedNotificationSchema, (n) => {
      updates.push(n.params.uri);
    });
    await client.subscribeResource({ uri: 'visioninapp://jobs/job_remote' });
    await new Promise((r) => setTimeout(r, 300));
    expect(updates).toEqual([]);

    metrics.push({ epoch: 1, metrics: { mAP50: 0.4 } } as unknown as EpochMetrics);
    await expect.poll(() => updates.length, { timeout: 2000 }).toBe(1);
    job.status = 'succeeded';
    await expect.poll(() => updates.length, { timeout: 2000 }).toBe(2);
    await new Promise((r) => setTimeout(r, 300));
    expect(updates).toEqual(['visioninapp://jobs/job_remote', 'visioninapp://jobs/job_remote']);

    await client.unsubscribeResource({ uri: 'visioninapp://jobs/job_remote' });
    job.status = 'failed';
    await new Promise((r) => setTimeout(r, 300));
    expect(updates).toHaveLength(2);
  });
});
