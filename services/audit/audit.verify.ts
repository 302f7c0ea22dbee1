import { readAnchorFile } from './audit.checkpoints.js';
import { PAGE, type AuditRepository, type AuditRow, type CheckpointRow } from './audit.repository.js';
import { rowHash, type AnchorCheckpoint, type AuditSigner } from './audit.signing.js';
import { GENESIS_HASH, type AuditProblem, type AuditVerifyOptions, type AuditVerifyResult } from './model.js';

/** Recomputes audit chains and reports what was edited, removed or reordered. */
export class AuditVerifier {
  constructor(
    private readonly repo: AuditRepository,
    private readonly signer: AuditSigner,
    private readonly anchorFile: string | undefined,
  ) {}

  /**
   * Recomputes every chain (one project, or all) and reports each edited, missing or reordered
   * entry, a chain head or checkpoint whose signature fails, a head behind a signed checkpoint and a
   * chain shorter than the checkpoint kept in the anchor file (the newest entries removed). With
   * `sinceCheckpoint`, only the entries from the latest signed checkpoint on are recomputed.
   */
  async verify(projectId?: string, opts: AuditVerifyOptions = {}): Promise<AuditVerifyResult> {
    const anchors = this.anchorFile === undefined ? {} : readAnchorFile(this.anchorFile);
    const projects =
      projectId !== undefined
        ? [projectId]
        : [
            ...new Set([
              ...(await this.repo.headProjectIds()),
              ...(await this.repo.entryProjectIds()),
              ...(anchors === 'unreadable' ? [] : Object.keys(anchors)),
            ]),
          ].sort();
    const result: AuditVerifyResult = { ok: true, checked: 0, checkpoints: 0, anchored: 0, problems: [] };
    if (anchors === 'unreadable')
      result.problems.push({
        projectId: projectId ?? '*',
        seq: 0,
        kind: 'edited',
        detail: `the anchor file ${this.anchorFile ?? ''} is unreadable: it was changed outside the platform; restore it from a backup`,
      });
    for (const project of projects)
      await this.project(project, result, opts, anchors === 'unreadable' ? undefined : anchors[project]);
    result.ok = result.problems.length === 0;
    return result;
  }

  private async project(
    projectId: string,
    result: AuditVerifyResult,
    opts: AuditVerifyOptions,
    anchor: AnchorCheckpoint | undefined,
  ): Promise<void> {
    const problem = (seq: number, kind: AuditProblem['kind'], detail: string) =>
      result.problems.push({ projectId, seq, kind, detail });
    const checkpoints: CheckpointRow[] = [];
    for (const cp of await this.repo.listCheckpoints(projectId)) {
      if (this.signer.checkpointSignatureOk(cp)) checkpoints.push(cp);
      else
        problem(
          Number(cp.seq),
          'edited',
          this.signer.keyring?.keys.has(cp.key_id) === false
            ? `the checkpoint at entry ${Number(cp.seq)} is signed with audit key ${cp.key_id}, which is not configured: add the retired key to AUDIT_KEYS`
            : `the checkpoint at entry ${Number(cp.seq)} fails its signature: it was written or changed outside the audit log`,
        );
    }
    const latest = checkpoints.at(-1);
    const start = opts.sinceCheckpoint === true && latest !== undefined ? Number(latest.seq) : 1;
    const pending = new Map(
      checkpoints.filter((cp) => Number(cp.seq) >= start).map((cp) => [Number(cp.seq), cp]),
    );
    result.checkpoints += pending.size;

    let expected = start;
    // from a checkpoint, its entry's own link is trusted (the checkpoint signs its hash)
    let prevHash: string | undefined = start === 1 ? GENESIS_HASH : undefined;
    let last: AuditRow | undefined;
    for (;;) {
      const rows = await this.repo.entriesFrom(
        projectId,
        last === undefined ? '>=' : '>',
        last === undefined ? start : Number(last.seq),
      );
      for (const row of rows) {
        const seq = Number(row.seq);
        result.checked++;
        const gap = seq > expected;
        if (gap)
          problem(
            expected,
            'missing',
            `entries ${rangeText(expected, seq - 1)} are missing: entry ${seq} follows entry ${expected - 1}`,
          );
        const cp = pending.get(seq);
        if (cp !== undefined) {
          pending.delete(seq);
          if (cp.hash !== row.hash)
            problem(
              seq,
              'edited',
              `entry ${seq} (${row.action}) differs from the signed checkpoint of it: it was replaced`,
            );
        }
        const key = this.signer.keyFor(row);
        if (key === 'unknown') {
          problem(
            seq,
            'edited',
            `entry ${seq} (${row.action}) is signed with audit key ${row.key_id ?? ''}, which is not configured: add the retired key to AUDIT_KEYS`,
          );
        } else if (rowHash(row, key) !== row.hash) {
          problem(
            seq,
            'edited',
            `entry ${seq} (${row.action}) no longer matches its hash: its content was changed`,
          );
        } else if (prevHash !== undefined && row.prev_hash !== prevHash) {
          const pred =
            row.prev_hash === GENESIS_HASH
              ? { seq: 0 }
              : await this.repo.findByHash(projectId, row.prev_hash);
          if (pred !== undefined) {
            const after =
              Number(pred.seq) === 0 ? 'the start of the chain' : `entry now at ${Number(pred.seq)}`;
            problem(
              seq,
              'reordered',
              `entry ${seq} (${row.action}) was written after ${after}, not after entry ${expected - 1}`,
            );
          } else if (gap) {
            // its predecessor is among the missing entries reported above
          } else if (seq === 1) {
            problem(
              1,
              'missing',
              'the entries before the first one are missing: it follows an entry that is gone',
            );
          } else {
            problem(seq - 1, 'edited', `entry ${seq - 1} was replaced after entry ${seq} recorded its hash`);
          }
        }
        prevHash = row.hash;
        expected = seq + 1;
        last = row;
      }
      if (rows.length < PAGE) break;
    }
    const lastSeq = last === undefined ? 0 : Number(last.seq);
    for (const cp of pending.values())
      problem(
        Number(cp.seq),
        'missing',
        `entry ${Number(cp.seq)} is gone although a signed checkpoint of ${new Date(Number(cp.at)).toISOString()} recorded it: entries were removed (the chain ends at ${lastSeq})`,
      );
    if (anchor !== undefined) {
      if (!this.signer.checkpointSignatureOk({ ...anchor, project_id: projectId })) {
        problem(
          anchor.seq,
          'edited',
          `the checkpoint of this project in the anchor file fails its signature: the file was changed`,
        );
      } else {
        result.anchored++;
        const anchored = await this.repo.hashAt(projectId, anchor.seq);
        if (anchored === undefined)
          problem(
            anchor.seq,
            'missing',
            `entry ${anchor.seq} is gone although the anchor file recorded it signed at ${new Date(anchor.at).toISOString()}: the newest entries were removed or the database was rolled back (the chain ends at ${lastSeq})`,
          );
        else if (anchored !== anchor.hash)
          problem(
            anchor.seq,
            'edited',
            `entry ${anchor.seq} differs from the one the anchor file recorded: it was replaced`,
          );
      }
    }
    const head = await this.repo.findHead(projectId);
    if (head === undefined) {
      if (last !== undefined) problem(0, 'missing', 'the chain head of this project is missing');
      return;
    }
    const headSeq = Number(head.seq);
    if (this.signer.keyring !== undefined || head.key_id !== null) {
      if (head.key_id === null && checkpoints.length > 0)
        problem(
          headSeq,
          'edited',
          'the chain head is not signed although the chain has signed checkpoints: audit_heads was changed',
        );
      else if (!this.signer.headSignatureOk(head))
        problem(
          headSeq,
          'edited',
          head.key_id !== null && this.signer.keyring?.keys.has(head.key_id) !== true
            ? `the chain head is signed with audit key ${head.key_id}, which is not configured: add the retired key to AUDIT_KEYS`
            : 'the chain head fails its signature: audit_heads was changed outside the audit log',
        );
    }
    const newestCheckpoint = Math.max(Number(latest?.seq ?? 0), anchor?.seq ?? 0);
    if (headSeq < newestCheckpoint)
      problem(
        headSeq + 1,
        'missing',
        `the chain head (entry ${headSeq}) is behind a signed checkpoint at entry ${newestCheckpoint}: the head was rewound and newer entries removed`,
      );
    if (headSeq > lastSeq)
      problem(
        lastSeq + 1,
        'missing',
        `entries ${rangeText(lastSeq + 1, headSeq)} are missing: the chain head says ${headSeq} were written`,
      );
    else if (headSeq < lastSeq)
      problem(headSeq + 1, 'edited', `entries after ${headSeq} were not written through the audit log`);
    else if (last !== undefined && head.hash !== last.hash) {
      const newest = await this.repo.findByHash(projectId, head.hash);
      if (newest !== undefined)
        problem(lastSeq, 'reordered', `the newest entry was moved from ${lastSeq} to ${Number(newest.seq)}`);
      else problem(lastSeq, 'edited', `entry ${lastSeq} was replaced after it was written`);
    }
  }
}

function rangeText(a: number, b: number): string {
  return a === b ? String(a) : `${a}..${b}`;
}
