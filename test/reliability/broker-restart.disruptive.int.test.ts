import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { connect } from 'rabbitmq-stream-js-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_PROJECT_ID } from '../../services/accounts/index.js';
import { loadConfig } from '../../app/config.js';
import { systemPrincipal } from '../../core/context.js';
import {
  createBroker,
  makeEnvelope,
  STREAMS,
  type Broker,
  type MessagePayload,
} from '../../services/infra/broker/index.js';
import { silentLogger } from '../../core/log.js';
import { createPlatform, type Platform } from '../../app/platform.js';
import { startHttpServer, type RunningServer } from '../../app/http.js';
import {
  SERVICE_URLS,
  skipWithoutService,
  startRabbitApp,
  stopRabbitApp,
  uniqueSuffix,
} from '../services.fixtures.js';

// Needs RabbitMQ with the stream plugin (TEST_RABBITMQ_STREAM_URL) and `rabbitmqctl` on this machine: the test stops
// RabbitMQ's app, so it is a *.disruptive.int.test.ts and runs after every other test file (see vitest.config.ts).
const skip = await skipWithoutService('RabbitMQ streams', SERVICE_URLS.rabbitmq, 'TEST_RABBITMQ_STREAM_URL');

const DEVICES = 3;
const INTERVAL_MS = 40;
const OUTAGE_MS = 6000;

interface Ready {
  status: string;
  checks: Array<{ port: string; adapter: string; ok: boolean; detail?: string }>;
}

async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe().catch(() => undefined);
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** A device heartbeat whose only tag names its sequence number, so the platform's per-tag confidence buckets count each message. */
function heartbeat(device: number, seq: number): MessagePayload<'device.heartbeat'> {
  return {
    deviceId: `restart-dev-${device}`,
    name: `restart device ${device}`,
    tags: [`seq-${device}-${seq}`],
    hardware: 'test',
    runtime: { onnxruntime: 'test' },
    provider: 'cpu',
    modelVersionId: null,
    state: 'serving',
    fps: seq,
    latencyP50Ms: 5,
    latencyP95Ms: 9,
    meanTopConfidence: 0.5,
    cpuPercent: 10,
    memoryMb: 256,
    temperatureC: 40,
  };
}

describe.skipIf(skip)(
  'RabbitMQ app stopped and started while device telemetry flows into the platform',
  () => {
    const url = SERVICE_URLS.rabbitmq;
    const prefix = `test-restart-${uniqueSuffix()}-`;
    let dataDir: string;
    let platform: Platform;
    let http: RunningServer;
    const devices: Broker[] = [];
    // set while the app is stopped, so that afterAll starts it again even when the test timed out mid-outage
    let appStopped = false;

    beforeAll(async () => {
      dataDir = mkdtempSync(path.join(tmpdir(), 'vrel-broker-'));
      const config = loadConfig(
        {
          DATA_DIR: dataDir,
          LOG_LEVEL: 'silent',
          RABBITMQ_STREAM_URL: url,
          RABBITMQ_STREAM_PREFIX: prefix,
          EMBEDDED_GPU_RUNNER: 'false',
          SIMULATED_DEVICES: '0',
          DEMO_DATASET: 'false',
        },
        dataDir,
      );
      platform = await createPlatform(config, silentLogger());
      await platform.start();
      http = await startHttpServer(platform, { port: 0, host: '127.0.0.1' });
      // each device publishes through its own connection, as an edge runner does
      for (let d = 0; d < DEVICES; d++)
        devices.push(await createBroker({ rabbitmqUrl: url, log: silentLogger(), streamPrefix: prefix }));
    }, 60_000);

    afterAll(async () => {
      if (appStopped) await startRabbitApp().catch(() => undefined);
      for (const b of devices) await b.close().catch(() => undefined);
      await http?.close();
      await platform?.close();
      rmSync(dataDir, { recursive: true, force: true });
      const u = new URL(url);
      const admin = await connect({
        hostname: u.hostname,
        port: Number(u.port || 5552),
        username: 'guest',
        password: 'guest',
        vhost: '/',
      });
      for (const s of Object.values(STREAMS))
        await admin.deleteStream({ stream: `${prefix}${s}` }).catch(() => undefined);
      await admin.close().catch(() => undefined);
    }, 60_000);

    it('processes every heartbeat exactly once, and /readyz goes red during the outage and green after', async () => {
      const readyz = async (): Promise<{ status: number; body: Ready }> => {
        const res = await fetch(`${http.url}/readyz`, { signal: AbortSignal.timeout(5000) });
        return { status: res.status, body: (await res.json()) as Ready };
      };
      const counts = async (): Promise<Map<string, number>> => {
        const rows = await platform.infra.db.kysely
          .selectFrom('feedback_confidence')
          .select(['tag', 'conf_count'])
          .where('project_id', '=', DEFAULT_PROJECT_ID)
          .where('tag', 'like', 'seq-%')
          .execute();
        return new Map(rows.map((r) => [r.tag, Number(r.conf_count)]));
      };
      expect((await readyz()).status).toBe(200);

      const sent: string[] = [];
      const sentAt: number[] = [];
      const published: Array<Promise<void>> = [];
      const publishErrors: string[] = [];
      let producing = true;
      const producers = devices.map(async (broker, d) => {
        for (let seq = 0; producing; seq++) {
          sent.push(`seq-${d}-${seq}`);
          sentAt.push(Date.now());
          const env = makeEnvelope('device.heartbeat', heartbeat(d, seq), {
            source: `edge:restart-dev-${d}`,
          });
          published.push(
            broker
              .publish(STREAMS.telemetry, env)
              .catch((err: Error) => void publishErrors.push(err.message)),
          );
          await new Promise((r) => setTimeout(r, INTERVAL_MS));
        }
      });

      const readiness: Array<{ at: number; status: number; brokerOk: boolean | undefined }> = [];
      let polling = true;
      const poller = (async () => {
        while (polling) {
          const r = await readyz().catch(() => undefined);
          if (r)
            readiness.push({
              at: Date.now(),
              status: r.status,
              brokerOk: r.body.checks.find((c) => c.port === 'broker')?.ok,
            });
          await new Promise((res) => setTimeout(res, 250));
        }
      })();

      let stopRequestedAt = 0;
      let stoppedAt = 0;
      let startedAt = 0;
      try {
        await waitFor(
          'the platform to apply heartbeats before the outage',
          async () => ((await counts()).size >= 20 ? true : undefined),
          20_000,
        );
        appStopped = true;
        stopRequestedAt = Date.now();
        await stopRabbitApp();
        stoppedAt = Date.now();
        await new Promise((r) => setTimeout(r, OUTAGE_MS));
        await startRabbitApp();
        appStopped = false;
        startedAt = Date.now();
        await waitFor(
          '/readyz green after the broker returns',
          async () => ((await readyz()).status === 200 ? true : undefined),
          60_000,
        );
        // keep producing a little after the broker is back, then stop
        await new Promise((r) => setTimeout(r, 2000));
      } finally {
        // never leave the shared RabbitMQ stopped, whatever failed above
        if (appStopped) await startRabbitApp().catch(() => undefined);
        producing = false;
        await Promise.all(producers);
      }
      await Promise.all(published);
      expect(publishErrors).toEqual([]);

      const total = sent.length;
      // wait for everything to arrive, but report what is missing rather than only timing out
      const until = Date.now() + 45_000;
      while ((await counts()).size < total && Date.now() < until)
        await new Promise((r) => setTimeout(r, 250));
      // a late redelivery would only show after a while: look again after a pause
      await new Promise((r) => setTimeout(r, 1500));
      const settled = await counts();
      polling = false;
      await poller;

      const missing = sent.filter((tag) => !settled.has(tag));
      const duplicated = [...settled].filter(([, n]) => n !== 1).map(([tag, n]) => `${tag}×${n}`);
      const sentDuringOutage = sentAt.filter((t) => t > stoppedAt && t < startedAt).length;
      expect(missing).toEqual([]);
      expect(duplicated).toEqual([]);
      expect(settled.size).toBe(total);
      expect(sentDuringOutage, 'heartbeats published while the app was stopped').toBeGreaterThan(
        OUTAGE_MS / INTERVAL_MS,
      );

      // the fleet consumer applied each device's last heartbeat (its sequence rides in fps)
      const ctx = {
        user: systemPrincipal(),
        projectId: DEFAULT_PROJECT_ID,
        requestId: 'broker-restart',
        log: silentLogger(),
      };
      const lastSeq = new Map<number, number>();
      for (const tag of sent) {
        const [, d, s] = tag.split('-');
        lastSeq.set(Number(d), Math.max(lastSeq.get(Number(d)) ?? -1, Number(s)));
      }
      await waitFor(
        'the fleet to show every device at its last heartbeat',
        async () => {
          const list = await platform.fleet.list(ctx, {});
          const fleet = list.filter((x) => x.id.startsWith('restart-dev-'));
          return fleet.length === DEVICES &&
            fleet.every((x) => x.fps === lastSeq.get(Number(x.id.slice('restart-dev-'.length))))
            ? true
            : undefined;
        },
        20_000,
      );

      const during = readiness.filter((r) => r.at > stoppedAt && r.at < startedAt);
      expect(
        during.some((r) => r.status === 503 && r.brokerOk === false),
        `readiness during the outage: ${JSON.stringify(during.map((r) => r.status))}`,
      ).toBe(true);
      expect(readiness.filter((r) => r.at < stopRequestedAt).map((r) => r.status)).not.toContain(503);
      expect(readiness.at(-1)?.status).toBe(200);
      console.info(
        `broker restart: ${total} heartbeats from ${DEVICES} devices, app stopped ${startedAt - stoppedAt} ms; readiness ${readiness.map((r) => r.status).join(',')}`,
      );
    }, 150_000);
  },
);
