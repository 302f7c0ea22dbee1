import { Router } from 'express';
import type { Health } from '../services/infra/health.js';

/** What the health routes need from the platform. */
export interface HealthSource {
  /** Every adapter's status plus platform-level checks (migrations applied, consumers running). */
  health(): Promise<Health[]>;
}

/** `/healthz` (the process is alive) and `/readyz` (every adapter is ready), both unauthenticated. */
export function healthRoutes(source: HealthSource): Router {
  const router = Router();
  router.get('/healthz', (_req, res) => {
    res.json({ status: 'ok', uptimeSeconds: Math.round(process.uptime()) });
  });
  router.get('/readyz', async (_req, res) => {
    const checks = await source.health();
    const ready = checks.every((c) => c.ok);
    res.status(ready ? 200 : 503).json({ status: ready ? 'ready' : 'not_ready', checks });
  });
  return router;
}
