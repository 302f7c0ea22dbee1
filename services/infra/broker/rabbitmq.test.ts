import { describe, expect, it } from 'vitest';
import { silentLogger } from '../../../core/log.js';
import { metrics } from './broker.contract.js';
import { STREAMS } from './port.js';
import { RabbitBroker } from './rabbitmq.js';

// No server needed: a port where nothing listens stands for RabbitMQ being down.
describe(RabbitBroker.name, () => {
  it('fails a publish as unavailable after its bound when the server stays down, naming the variable', async () => {
    const broker = new RabbitBroker({
      url: 'rabbitmq-stream://guest:guest@127.0.0.1:1/',
      log: silentLogger(),
      publishTimeoutMs: 800,
    });
    const started = Date.now();
    const err = await broker.publish(STREAMS.telemetry, metrics(1)).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'unavailable' });
    expect((err as Error).message).toContain('RABBITMQ_STREAM_URL');
    expect(Date.now() - started).toBeGreaterThanOrEqual(700);
    const health = await broker.health();
    expect(health).toMatchObject({ port: 'broker', adapter: 'rabbitmq', ok: false });
    expect(health.detail).toContain('127.0.0.1:1 (RABBITMQ_STREAM_URL)');
    await broker.close();
  });

  it('rejects an invalid envelope before touching the network', async () => {
    const broker = new RabbitBroker({
      url: 'rabbitmq-stream://guest:guest@127.0.0.1:1/',
      log: silentLogger(),
    });
    await expect(broker.publish(STREAMS.telemetry, { ...metrics(1), payload: {} })).rejects.toMatchObject({
      code: 'invalid_input',
    });
    await broker.close();
  });
});
