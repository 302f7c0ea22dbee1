import { createHash, randomBytes } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import {
  makeEnvelope,
  MemoryBroker,
  STREAMS,
  type Broker,
  type Envelope,
  type MessagePayload,
  type MessageType,
  type StreamName,
  type Subscription,
} from '../services/infra/broker/index.js';
import { LocalStorage, localStorageRouter } from '../services/infra/storage/index.js';

/** A published model as a deploy.apply carries it. */
export type DeployModel = MessagePayload<'deploy.apply'>['model'];

/**
 * Test and benchmark support: the platform side an edge runner talks to, embedded — a MemoryBroker,
 * LocalStorage behind an express app on an ephemeral port, and a recorder of telemetry.
 */
export class EmbeddedPlatform {
  readonly broker: Broker;
  readonly telemetry: Envelope[] = [];
  storage!: LocalStorage;
  baseUrl = '';
  private server: http.Server | undefined;
  private sub: Subscription | undefined;
  private waiters: Array<() => void> = [];

  /** `broker` defaults to an in-process MemoryBroker; pass a RabbitBroker to run against the real one. */
  constructor(
    private readonly root: string,
    broker?: Broker,
  ) {
    this.broker = broker ?? new MemoryBroker({ retention: 1_000_000 });
  }

  async start(): Promise<void> {
    const app = express();
    // The signed URLs need the port, so the storage router is attached once the server listens.
    const holder: { router?: express.Router } = {};
    app.use((req, res, next) => (holder.router ? holder.router(req, res, next) : next()));
    this.server = http.createServer(app);
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.baseUrl = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    this.storage = new LocalStorage({
      root: this.root,
      baseUrl: this.baseUrl,
      secret: randomBytes(24).toString('hex'),
    });
    holder.router = localStorageRouter(this.storage);
    this.sub = await this.broker.subscribe(STREAMS.telemetry, { from: 'first' }, (env) => {
      this.telemetry.push(env);
      for (const w of this.waiters.splice(0)) w();
    });
  }

  async close(): Promise<void> {
    await this.sub?.close();
    await this.broker.close();
    await new Promise<void>((resolve) => {
      this.server?.close(() => resolve());
      this.server?.closeAllConnections();
    });
  }

  /** Stores model bytes and returns the deploy.apply model block with a signed GET URL. */
  async publishModel(
    bytes: Buffer,
    meta: { versionId: string; classNames?: string[]; inputSize?: number; sha256?: string; size?: number },
  ): Promise<DeployModel> {
    const key = `models/${meta.versionId}/model.onnx`;
    await this.storage.put(key, bytes, { contentType: 'application/octet-stream' });
    return {
      versionId: meta.versionId,
      name: 'helmets',
      version: Number(/(\d+)$/.exec(meta.versionId)?.[1] ?? 1),
      url: await this.storage.presignGet(key, 3600),
      sha256: meta.sha256 ?? createHash('sha256').update(bytes).digest('hex'),
      size: meta.size ?? bytes.length,
      layout: 'ultralytics',
      inputSize: meta.inputSize ?? 64,
      classNames: meta.classNames ?? ['helmet', 'head'],
    };
  }

  /** Publishes a deploy.apply to one device; returns the envelope. */
  async deploy(
    deviceId: string,
    deploymentId: string,
    model: DeployModel,
    rolloutId = 'ro-1',
  ): Promise<Envelope> {
    const env = makeEnvelope(
      'deploy.apply',
      { deploymentId, rolloutId, deviceId, model },
      { source: 'platform', target: deviceId },
    );
    await this.broker.publish(STREAMS.control, env);
    return env;
  }

  async rollback(
    deviceId: string,
    deploymentId: string,
    reason = 'gate failed',
    rolloutId = 'ro-1',
  ): Promise<void> {
    await this.broker.publish(
      STREAMS.control,
      makeEnvelope(
        'deploy.rollback',
        { deploymentId, rolloutId, deviceId, reason },
        { source: 'platform', target: deviceId },
      ),
    );
  }

  /** Payloads of recorded telemetry of one type, optionally filtered. */
  messages<T extends MessageType>(
    type: T,
    filter: (p: MessagePayload<T>) => boolean = () => true,
  ): Array<MessagePayload<T>> {
    return this.telemetry
      .filter((e) => e.type === type)
      .map((e) => e.payload as MessagePayload<T>)
      .filter(filter);
  }

  /** Resolves once a recorded message of `type` satisfies `filter`. */
  async waitFor<T extends MessageType>(
    type: T,
    filter: (p: MessagePayload<T>) => boolean,
    timeoutMs = 15_000,
  ): Promise<MessagePayload<T>> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const hit = this.messages(type, filter)[0];
      if (hit) return hit;
      const left = deadline - Date.now();
      if (left <= 0)
        throw new Error(
          `timed out waiting for ${type}; got ${this.telemetry.filter((e) => e.type === type).length} of that type`,
        );
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, Math.min(left, 250));
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }
}

/** A broker wrapper whose publish fails while `down` is set, as an unreachable RabbitMQ would. */
export class FlakyBroker implements Broker {
  readonly adapter = 'memory' as const;
  down = false;
  failures = 0;

  constructor(private readonly inner: Broker) {}

  async publish(stream: StreamName, envelope: Envelope): Promise<void> {
    if (this.down) {
      this.failures++;
      throw new Error('connect ECONNREFUSED 127.0.0.1:5552');
    }
    return this.inner.publish(stream, envelope);
  }

  subscribe(...args: Parameters<Broker['subscribe']>): ReturnType<Broker['subscribe']> {
    return this.inner.subscribe(...args);
  }

  health(): ReturnType<Broker['health']> {
    return this.inner.health();
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}
