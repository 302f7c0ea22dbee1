import type { Kysely } from 'kysely';
import type { Database } from '../infra/db/schema.js';
import type { DeviceSample } from './model.js';

/** The SQL of device samples (recent heartbeat figures), on a database or an open transaction. */
export class DeviceSampleRepository {
  constructor(private readonly db: Kysely<Database>) {}

  /** The same repository inside a transaction. */
  in(trx: Kysely<Database>): DeviceSampleRepository {
    return new DeviceSampleRepository(trx);
  }

  async record(deviceId: string, s: DeviceSample): Promise<void> {
    await this.db
      .insertInto('device_samples')
      .values({
        device_id: deviceId,
        at: s.at,
        fps: s.fps,
        latency_p95_ms: s.latencyP95Ms,
        mean_top_confidence: s.meanTopConfidence,
      })
      .execute();
  }

  /** The device's samples since `since`, oldest first, the newest `limit` of them. */
  async since(deviceId: string, since: number, limit: number): Promise<DeviceSample[]> {
    const rows = await this.db
      .selectFrom('device_samples')
      .selectAll()
      .where('device_id', '=', deviceId)
      .where('at', '>=', since)
      .orderBy('at', 'desc')
      .limit(limit)
      .execute();
    return rows.reverse().map((r) => ({
      at: Number(r.at),
      fps: Number(r.fps),
      latencyP95Ms: Number(r.latency_p95_ms),
      meanTopConfidence: r.mean_top_confidence === null ? null : Number(r.mean_top_confidence),
    }));
  }

  /** Deletes every sample older than `before`. */
  async prune(before: number): Promise<void> {
    await this.db.deleteFrom('device_samples').where('at', '<', before).execute();
  }
}
