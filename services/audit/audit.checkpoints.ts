import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { z } from 'zod';
import type { Logger } from '../../core/log.js';
import type { AuditRepository, HeadRow } from './audit.repository.js';
import type { AnchorCheckpoint, AuditSigner } from './audit.signing.js';

const anchorCheckpointSchema = z.object({
  seq: z.number().int().positive(),
  hash: z.string().regex(/^[0-9a-f]{64}$/),
  at: z.number().int().nonnegative(),
  keyId: z.string().min(1).max(32),
  mac: z.string().regex(/^[0-9a-f]{64}$/),
}) satisfies z.ZodType<AnchorCheckpoint>;
const anchorFileSchema = z.object({
  version: z.literal(1),
  projects: z.record(z.string(), anchorCheckpointSchema),
});

/** Dependencies of the checkpoints. */
export interface AuditCheckpointsOptions {
  repo: AuditRepository;
  log: Logger;
  now: () => number;
  signer: AuditSigner;
  checkpointEvery: number;
  checkpointIntervalMs: number;
  anchorFile: string | undefined;
}

/**
 * Signed checkpoints of each project's chain (in the database, the log and the anchor file), so a
 * truncated chain or a database rolled back to an earlier state is detectable.
 */
export class AuditCheckpoints {
  private readonly repo: AuditRepository;
  private readonly log: Logger;
  private readonly now: () => number;
  private readonly signer: AuditSigner;
  private readonly checkpointEvery: number;
  private readonly checkpointIntervalMs: number;
  private readonly anchorFile: string | undefined;
  private anchorQueue: Promise<void> = Promise.resolve();

  constructor(o: AuditCheckpointsOptions) {
    this.repo = o.repo;
    this.log = o.log;
    this.now = o.now;
    this.signer = o.signer;
    this.checkpointEvery = o.checkpointEvery;
    this.checkpointIntervalMs = o.checkpointIntervalMs;
    this.anchorFile = o.anchorFile;
  }

  /**
   * After an entry was appended in `trx` over `head`: reports a head that fails its signature or is
   * behind a checkpoint, and writes a checkpoint when one is due; whether one was written.
   */
  async afterAppend(
    trx: AuditRepository,
    head: HeadRow,
    entry: { projectId: string; seq: number; hash: string; at: number },
  ): Promise<boolean> {
    if (this.signer.keyring === undefined) return false;
    if (!this.signer.headSignatureOk(head))
      this.log.error(
        { projectId: entry.projectId, seq: Number(head.seq) },
        'audit chain head fails its signature (someone changed audit_heads); run visioninapp audit verify',
      );
    const last = await trx.latestCheckpoint(entry.projectId);
    if (last !== undefined && Number(last.seq) > Number(head.seq))
      this.log.error(
        { projectId: entry.projectId, headSeq: Number(head.seq), checkpointSeq: Number(last.seq) },
        'audit chain head is behind a signed checkpoint (entries were removed); run visioninapp audit verify',
      );
    if (
      last === undefined ||
      entry.seq - Number(last.seq) >= this.checkpointEvery ||
      entry.at - Number(last.at) >= this.checkpointIntervalMs
    )
      return this.write(trx, entry.projectId, entry.seq, entry.hash);
    return false;
  }

  /**
   * Signs a checkpoint of every project whose head moved since its latest one (after checking the
   * head's signature and that its entry is there), then copies the latest checkpoints to the anchor
   * file. Run periodically and at shutdown, so the newest entries are covered too.
   */
  async checkpoint(): Promise<number> {
    if (this.signer.keyring === undefined) return 0;
    let written = 0;
    const heads = await this.repo.listHeads();
    for (const head of heads) {
      const last = await this.repo.latestCheckpoint(head.project_id);
      if (Number(head.seq) === 0 || (last !== undefined && Number(last.seq) >= Number(head.seq))) continue;
      const entryHash = await this.repo.hashAt(head.project_id, Number(head.seq));
      if (!this.signer.headSignatureOk(head) || entryHash !== head.hash) {
        this.log.error(
          { projectId: head.project_id, seq: Number(head.seq) },
          'audit chain head is not signed or does not match its entry; no checkpoint written; run visioninapp audit verify',
        );
        continue;
      }
      if (await this.write(this.repo, head.project_id, Number(head.seq), head.hash)) written++;
    }
    await this.anchor();
    return written;
  }

  private async write(repo: AuditRepository, projectId: string, seq: number, hash: string): Promise<boolean> {
    const at = this.now();
    const signed = this.signer.sign('audit.checkpoint', { projectId, seq, hash, at });
    if (signed === undefined) return false;
    // a checkpoint already at this seq is kept: a different one is evidence `verify` reports
    const inserted = await repo.insertCheckpoint({
      project_id: projectId,
      seq,
      hash,
      at,
      key_id: signed.keyId,
      mac: signed.mac,
    });
    // the log is a second copy outside the database (hash and signature are not secrets)
    if (inserted)
      this.log.info({ projectId, seq, hash, at, keyId: signed.keyId, mac: signed.mac }, 'audit checkpoint');
    return inserted;
  }

  /** Raises each project's checkpoint in the anchor file to the latest validly signed one in the database (never lowers it). */
  anchor(): Promise<void> {
    const file = this.anchorFile;
    if (file === undefined || this.signer.keyring === undefined) return Promise.resolve();
    const run = async () => {
      const anchors = readAnchorFile(file);
      if (anchors === 'unreadable') {
        this.log.error(
          { file },
          'audit anchor file is unreadable; not overwritten; run visioninapp audit verify',
        );
        return;
      }
      let changed = false;
      for (const projectId of await this.repo.headProjectIds()) {
        const cp = await this.repo.latestCheckpoint(projectId);
        const known = anchors[projectId];
        if (cp === undefined || !this.signer.checkpointSignatureOk(cp)) continue;
        if (known !== undefined && known.seq > Number(cp.seq)) {
          this.log.error(
            { projectId, anchoredSeq: known.seq, checkpointSeq: Number(cp.seq) },
            'audit checkpoints in the database are behind the anchor file (rolled back); run visioninapp audit verify',
          );
          continue;
        }
        if (known?.seq === Number(cp.seq)) continue;
        anchors[projectId] = {
          seq: Number(cp.seq),
          hash: cp.hash,
          at: Number(cp.at),
          keyId: cp.key_id,
          mac: cp.mac,
        };
        changed = true;
      }
      if (!changed) return;
      const tmp = `${file}.${process.pid}.tmp`;
      writeFileSync(tmp, `${JSON.stringify({ version: 1, projects: anchors }, null, 2)}\n`, { mode: 0o600 });
      renameSync(tmp, file);
    };
    // one writer at a time in this process; a failed anchor never fails the append that triggered it
    this.anchorQueue = this.anchorQueue.then(run).catch((err: Error) => {
      this.log.error({ err: err.message }, 'audit anchor file not written');
    });
    return this.anchorQueue;
  }
}

/** The anchor file's checkpoints by project ({} when there is no file yet). */
export function readAnchorFile(file: string): Record<string, AnchorCheckpoint> | 'unreadable' {
  if (!existsSync(file)) return {};
  try {
    return anchorFileSchema.parse(JSON.parse(readFileSync(file, 'utf8'))).projects;
  } catch {
    return 'unreadable';
  }
}
