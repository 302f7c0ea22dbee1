import type { Logger } from '../../log.js';
import { MemoryBroker } from './memory.js';
import type { Broker } from './port.js';

export { STREAMS } from './port.js';
export type {
  Broker,
  MessageHandler,
  StartFrom,
  StreamName,
  SubscribeOptions,
  Subscription,
} from './port.js';
export {
  decodeMessage,
  envelopeSchema,
  makeEnvelope,
  messageSchemas,
  OUTPUT_LAYOUTS,
  parseMessage,
  TRAIN_BACKENDS,
  trainConfigSchema,
} from './envelope.js';
export type {
  Envelope,
  Message,
  MessagePayload,
  MessageType,
  OutputLayout,
  ParseResult,
  TrainBackend,
  TrainConfig,
} from './envelope.js';
export { Delivery, DEFAULT_DEDUPE_WINDOW } from './delivery.js';
export type { DeliveryOutcome } from './delivery.js';
export { MemoryBroker } from './memory.js';
export type { MemoryBrokerOptions } from './memory.js';
export type { RabbitBroker, RabbitBrokerOptions } from './rabbitmq.js';

/** Builds the broker adapter: RabbitMQ Streams when `rabbitmqUrl` is set (loaded lazily), else the in-process broker. */
export async function createBroker(opts: {
  rabbitmqUrl?: string;
  dataDir?: string;
  log: Logger;
  streamPrefix?: string;
}): Promise<Broker> {
  if (opts.rabbitmqUrl !== undefined && opts.rabbitmqUrl !== '') {
    const { RabbitBroker } = await import('./rabbitmq.js');
    return new RabbitBroker({
      url: opts.rabbitmqUrl,
      log: opts.log.child({ port: 'broker' }),
      ...(opts.streamPrefix === undefined ? {} : { streamPrefix: opts.streamPrefix }),
    });
  }
  return new MemoryBroker({
    log: opts.log.child({ port: 'broker' }),
    ...(opts.dataDir === undefined ? {} : { dataDir: opts.dataDir }),
    ...(opts.streamPrefix === undefined ? {} : { streamPrefix: opts.streamPrefix }),
  });
}
