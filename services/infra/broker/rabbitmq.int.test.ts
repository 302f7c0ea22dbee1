import { connect, type Client } from 'rabbitmq-stream-js-client';
import { afterAll, beforeAll, describe } from 'vitest';
import { SERVICE_URLS, skipWithoutService, uniqueSuffix } from '../../../test/services.fixtures.js';
import { silentLogger } from '../../../core/log.js';
import { brokerContract, type BrokerFixture } from './broker.contract.js';
import { STREAMS } from './port.js';
import { RabbitBroker, type RabbitBrokerOptions } from './rabbitmq.js';

// Needs RabbitMQ with the stream plugin: TEST_RABBITMQ_STREAM_URL (default rabbitmq-stream://guest:guest@127.0.0.1:5552/).
const skip = await skipWithoutService('RabbitMQ streams', SERVICE_URLS.rabbitmq, 'TEST_RABBITMQ_STREAM_URL');
const url = SERVICE_URLS.rabbitmq;

async function rawClient(): Promise<Client> {
  const u = new URL(url);
  return connect({
    hostname: u.hostname,
    port: Number(u.port || 5552),
    username: decodeURIComponent(u.username || 'guest'),
    password: decodeURIComponent(u.password || 'guest'),
    vhost: '/',
  });
}

describe.skipIf(skip)(RabbitBroker.name, () => {
  let raw: Client;
  const prefixes: string[] = [];

  beforeAll(async () => {
    raw = await rawClient();
  });
  afterAll(async () => {
    for (const prefix of prefixes)
      for (const s of Object.values(STREAMS))
        await raw?.deleteStream({ stream: `${prefix}${s}` }).catch(() => undefined);
    await raw?.close();
  });

  const fixture = async (opts: Partial<RabbitBrokerOptions> = {}): Promise<BrokerFixture> => {
    const prefix = `test-${uniqueSuffix()}-`;
    prefixes.push(prefix);
    const broker = new RabbitBroker({ url, log: silentLogger(), streamPrefix: prefix, ...opts });
    const publishers = new Map<string, Awaited<ReturnType<Client['declarePublisher']>>>();
    return {
      broker,
      publishRaw: async (stream, data) => {
        const name = `${prefix}${stream}`;
        let publisher = publishers.get(name);
        if (publisher === undefined) {
          // the broker may have declared it already, with its retention arguments (then code 17)
          await raw.createStream({ stream: name, arguments: {} }).catch((err: Error) => {
            if (!err.message.includes('code 17')) throw err;
          });
          publisher = await raw.declarePublisher({ stream: name });
          publishers.set(name, publisher);
        }
        await publisher.send(Buffer.from(data));
        await publisher.flush();
      },
      cleanup: async () => {
        for (const p of publishers.values()) await p.close().catch(() => undefined);
      },
    };
  };

  brokerContract('rabbitmq', () => fixture(), {
    bounded: (bounds, onGap) => fixture({ bounds, onRetentionGap: onGap }),
  });
});
