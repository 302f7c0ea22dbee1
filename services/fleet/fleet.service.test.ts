import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isPlatformError } from '../../core/errors.js';
import { makeEnvelope, type MessagePayload } from '../../protocol/envelope.js';
import { FleetService } from './fleet.service.js';
import { makeFleetHarness, testContext } from './fleet.fixtures.js';

type Harness = Awaited<ReturnType<typeof makeFleetHarness>>;

function heartbeat(deviceId: string, over: Partial<MessagePayload<'device.heartbeat'>> = {}) {
  return makeEnvelope(
    'device.heartbeat',
    {
      deviceId,
      name: `Jetson ${deviceId}`,
      tags: ['line-3'],
      hardware: 'Jetson Orin Nano 8GB',
      runtime: { jetpack: '6.0', onnxruntime: '1.23.0' },
      provider: 'tensorrt',
      modelVersionId: 'mv_a',
      state: 'serving',
      fps: 25,
      latencyP50Ms: 12,
      latencyP95Ms: 20,
      meanTopConfidence: 0.82,
      cpuPercent: 40,
      memoryMb: 1200,
      temperatureC: 55,
      ...over,
    },
    { source: deviceId },
  );
}

describe(FleetService.name, () => {
  let h: Harness;
  let sut: FleetService;
  const ctx = testContext('viewer');

  beforeEach(async () => {
    h = await makeFleetHarness();
    sut = h.fleet;
  });
  afterEach(async () => {
    await h.cleanup();
  });

  it('registers a device from its first heartbeat and keeps it current', async () => {
    await sut.handleTelemetry(heartbeat('cam-1'));
    h.clock.now += 1000;
    await sut.handleTelemetry(
      heartbeat('cam-1', { modelVersionId: 'mv_b', latencyP95Ms: 31, temperatureC: 60 }),
    );
    const d = await sut.get(ctx, 'cam-1');
    expect(d).toMatchObject({
      id: 'cam-1',
      projectId: 'default',
      name: 'Jetson cam-1',
      tags: ['line-3'],
      hardware: 'Jetson Orin Nano 8GB',
      runtime: { jetpack: '6.0', onnxruntime: '1.23.0' },
      provider: 'tensorrt',
      modelVersionId: 'mv_b',
      previousModelVersionId: 'mv_a',
      state: 'serving',
      latencyP95Ms: 31,
      meanTopConfidence: 0.82,
      temperatureC: 60,
      lastHeartbeatAt: h.clock.now,
      health: { status: 'ok', online: true, issues: [] },
    });
    const updates = h.events.filter((e) => e.type === 'device.updated');
    expect(updates.map((e) => e.type === 'device.updated' && e.registered)).toEqual([true, false]);
  });

  it("keeps each heartbeat's figures for the device page, oldest first, for a day, in the device's project only", async () => {
    await sut.handleTelemetry(heartbeat('cam-1', { fps: 20, latencyP95Ms: 30, meanTopConfidence: 0.5 }));
    h.clock.now += 5000;
    await sut.handleTelemetry(heartbeat('cam-1', { fps: 24, latencyP95Ms: 22, meanTopConfidence: null }));
    await sut.handleTelemetry(heartbeat('cam-2', { fps: 9 }));
    expect(await sut.history(ctx, 'cam-1')).toEqual([
      { at: h.clock.now - 5000, fps: 20, latencyP95Ms: 30, meanTopConfidence: 0.5 },
      { at: h.clock.now, fps: 24, latencyP95Ms: 22, meanTopConfidence: null },
    ]);
    // a window of one minute, an hour later, holds only what came since
    h.clock.now += 3600_000;
    await sut.handleTelemetry(heartbeat('cam-1', { fps: 30 }));
    expect((await sut.history(ctx, 'cam-1', { minutes: 1 })).map((x) => x.fps)).toEqual([30]);
    expect((await sut.history(ctx, 'cam-1', { minutes: 120 })).map((x) => x.fps)).toEqual([20, 24, 30]);
    // a day later the old samples are pruned by the next heartbeat
    h.clock.now += 24 * 3600_000 + 1000;
    await sut.handleTelemetry(heartbeat('cam-1', { fps: 31 }));
    const left = await h.db.kysely
      .selectFrom('device_samples')
      .select('fps')
      .where('device_id', '=', 'cam-1')
      .execute();
    expect(left.map((r) => Number(r.fps))).toEqual([31]);
    await expect(sut.history(testContext('viewer', 'other'), 'cam-1')).rejects.toMatchObject({
      code: 'not_found',
    });
  });

  it('lists by tag and by online state, and resolves groups', async () => {
    await sut.handleTelemetry(heartbeat('cam-1'));
    await sut.handleTelemetry(heartbeat('cam-2', { tags: ['line-3', 'north'] }));
    await sut.handleTelemetry(heartbeat('cam-3', { tags: ['line-4'] }));
    h.clock.now += 31_000;
    await sut.handleTelemetry(heartbeat('cam-2', { tags: ['line-3', 'north'] }));
    expect((await sut.list(ctx, { tag: 'line-3' })).map((d) => d.id)).toEqual(['cam-1', 'cam-2']);
    expect((await sut.list(ctx, { online: true })).map((d) => d.id)).toEqual(['cam-2']);
    expect((await sut.list(ctx, { tag: 'line-3', online: false })).map((d) => d.id)).toEqual(['cam-1']);
    expect((await sut.resolveTarget(ctx, { tag: 'north' })).map((d) => d.id)).toEqual(['cam-2']);
    expect((await sut.resolveTarget(ctx, { deviceIds: ['cam-3', 'cam-1'] })).map((d) => d.id)).toEqual([
      'cam-3',
      'cam-1',
    ]);
    const offline = await sut.health(ctx, 'cam-1');
    expect(offline.status).toBe('offline');
    expect(offline.issues[0]).toMatch(/no heartbeat for 31 s/);
  });

  it('explains unknown devices and tags', async () => {
    await sut.handleTelemetry(heartbeat('cam-1'));
    await expect(sut.get(ctx, 'cam-9')).rejects.toThrow(/device "cam-9" not found; known devices: cam-1/);
    await expect(sut.resolveTarget(ctx, { tag: 'line-9' })).rejects.toThrow(
      /no device carries tag "line-9"; known tags: line-3/,
    );
    const err = await sut.resolveTarget(ctx, { deviceIds: ['cam-1', 'cam-7'] }).catch((e: unknown) => e);
    expect(isPlatformError(err, 'not_found') && err.message).toMatch(/unknown device\(s\) cam-7/);
    await expect(sut.resolveTarget(ctx, { tag: '' } as never)).rejects.toMatchObject({
      code: 'invalid_input',
    });
    await expect(sut.list(testContext('viewer', 'other-project'))).resolves.toEqual([]);
  });

  it('flags health issues: heat, slow inference, error state', async () => {
    await sut.handleTelemetry(heartbeat('hot', { temperatureC: 91, latencyP95Ms: 450 }));
    await sut.handleTelemetry(heartbeat('broken', { state: 'error' }));
    const hot = await sut.health(ctx, 'hot');
    expect(hot.status).toBe('warn');
    expect(hot.issues).toEqual(['temperature 91 °C is above 80 °C', 'p95 latency 450 ms is above 200 ms']);
    expect((await sut.health(ctx, 'broken')).status).toBe('error');
  });

  it('ignores malformed messages and invalid device ids without throwing', async () => {
    await sut.handleTelemetry({
      id: 'x',
      type: 'device.heartbeat',
      ts: new Date().toISOString(),
      source: 's',
      payload: { deviceId: 1 },
    });
    await sut.handleTelemetry('not a message');
    await sut.handleTelemetry(heartbeat('bad id with spaces'));
    expect(await sut.list(ctx)).toEqual([]);
  });

  it('indexes devices through the search outbox only when something searchable changes', async () => {
    await sut.handleTelemetry(heartbeat('cam-1'));
    await sut.handleTelemetry(heartbeat('cam-1', { fps: 11 }));
    await sut.handleTelemetry(heartbeat('cam-1', { modelVersionId: 'mv_b' }));
    const rows = await h.db.kysely
      .selectFrom('search_outbox')
      .selectAll()
      .where('kind', '=', 'device')
      .execute();
    expect(rows).toHaveLength(2);
    const doc = JSON.parse(rows[1]!.doc!) as {
      title: string;
      tags: string[];
      fields: Record<string, unknown>;
    };
    expect(doc).toMatchObject({
      title: 'Jetson cam-1',
      tags: ['line-3'],
      fields: { modelVersionId: 'mv_b', provider: 'tensorrt' },
    });
  });

  it('consumes heartbeats from the broker as the platform-fleet consumer', async () => {
    const sub = await sut.startConsumers(h.broker);
    try {
      const [dev] = await h.addDevices(1, ['line-5'], 'cam');
      await dev!.heartbeat();
      await h.settle();
      expect((await sut.list(ctx, { tag: 'line-5' })).map((d) => d.id)).toEqual(['cam-1']);
    } finally {
      await sub.close();
    }
  });
});
