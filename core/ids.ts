import { randomBytes } from 'node:crypto';

/** A sortable, unique id with a readable prefix: `job_lq2x8k0a_3f9c1e2b7d`. */
export function newId(prefix: string): string {
  return `${prefix}_${Date.now().toString(36)}${randomBytes(6).toString('hex')}`;
}
