import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';

/** Prometheus metrics of one platform instance, served at /metrics. */
export interface PlatformMetrics {
  registry: Registry;
  httpRequests: Counter<'method' | 'route' | 'status'>;
  httpDuration: Histogram<'method' | 'route'>;
  brokerMessages: Counter<'stream' | 'type' | 'outcome'>;
  /** Named consumers that resumed past messages stream retention dropped before they read them. */
  brokerRetentionGaps: Counter<'stream' | 'consumer'>;
  adapterUp: Gauge<'port' | 'adapter'>;
}

/** Creates a registry with Node's default metrics and the platform's own. */
export function createMetrics(): PlatformMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'visioninapp_' });
  return {
    registry,
    httpRequests: new Counter({
      name: 'visioninapp_http_requests_total',
      help: 'HTTP requests by method, route and status',
      labelNames: ['method', 'route', 'status'],
      registers: [registry],
    }),
    httpDuration: new Histogram({
      name: 'visioninapp_http_request_seconds',
      help: 'HTTP request duration',
      labelNames: ['method', 'route'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers: [registry],
    }),
    brokerMessages: new Counter({
      name: 'visioninapp_broker_messages_total',
      help: 'Broker messages handled by stream, type and outcome',
      labelNames: ['stream', 'type', 'outcome'],
      registers: [registry],
    }),
    brokerRetentionGaps: new Counter({
      name: 'visioninapp_broker_retention_gaps_total',
      help: 'Times a named consumer resumed past messages dropped by stream retention',
      labelNames: ['stream', 'consumer'],
      registers: [registry],
    }),
    adapterUp: new Gauge({
      name: 'visioninapp_adapter_up',
      help: '1 when the adapter is ready',
      labelNames: ['port', 'adapter'],
      registers: [registry],
    }),
  };
}
