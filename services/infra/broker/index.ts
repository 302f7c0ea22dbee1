import type { Logger } from '../../../core/log.js';
import { MemoryBroker } from './memory.js';
import type { Broker, RetentionGap, StreamRetention } from './port.js';

export { DEFAULT_RETENTION, maxAgeMs, STREAMS } from './port.js';
export type {
  Broker,
  MessageHandler,
  RetentionGap,
  StreamRetention,
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
} from '../../../protocol/envelope.js';
export type {
  Envelope,
  Message,
  MessagePayload,
  MessageType,
  OutputLayout,
  ParseResult,
  TrainBackend,
  TrainConfig,
} from '../../../protocol/envelope.js';
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
  /** Age and size bounds of every stream (RabbitMQ arguments, or the in-process broker's own). */
  bounds?: StreamRetention;
  /** Told when a named consumer's stored offset fell behind retention (after the adapter's warning). */
  onRetentionGap?: (gap: RetentionGap) => void;
}): Promise<Broker> {
  const shared = {
    ...(opts.bounds === undefined ? {} : { bounds: opts.bounds }),
    ...(opts.onRetentionGap === undefined ? {} : { onRetentionGap: opts.onRetentionGap }),
  };
  if (opts.rabbitmqUrl !== undefined && opts.rabbitmqUrl !== '') {
    const { RabbitBroker } = await import('./rabbitmq.js');
    return new RabbitBroker({
      url: opts.rabbitmqUrl,
      log: opts.log.child({ port: 'broker' }),
      ...shared,
      ...(opts.streamPrefix === undefined ? {} : { streamPrefix: opts.streamPrefix }),
    });
  }
  return new MemoryBroker({
    log: opts.log.child({ port: 'broker' }),
    ...shared,
    ...(opts.dataDir === undefined ? {} : { dataDir: opts.dataDir }),
    ...(opts.streamPrefix === undefined ? {} : { streamPrefix: opts.streamPrefix }),
  });
}
