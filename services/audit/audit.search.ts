import type { Db } from '../infra/db/port.js';
import type { SearchDoc } from '../infra/search/port.js';
import { canonicalJson } from '../approvals/canonical-json.js';
import { AuditRepository, PAGE, rowToEntry } from './audit.repository.js';
import type { AuditEntry } from './model.js';

/** Every audit entry as a search document, for a full reindex. */
export async function* auditSearchDocs(db: Db): AsyncIterable<SearchDoc> {
  const repo = new AuditRepository(db.kysely, db.dialect);
  let lastId = 0;
  for (;;) {
    const rows = await repo.entriesAfterId(lastId);
    for (const row of rows) yield auditSearchDoc(rowToEntry(row));
    const tail = rows.at(-1);
    if (tail === undefined || rows.length < PAGE) return;
    lastId = Number(tail.id);
  }
}

/** The search document of one entry (kind `audit`, id `<projectId>:<seq>`). */
export function auditSearchDoc(entry: AuditEntry): SearchDoc {
  const fields: Record<string, string | number | boolean> = {
    action: entry.action,
    actorId: entry.actor.id,
    seq: entry.seq,
  };
  if (entry.tool !== null) fields.tool = entry.tool;
  if (entry.threadId !== null) fields.threadId = entry.threadId;
  if (entry.approvalId !== null) fields.approvalId = entry.approvalId;
  const data = canonicalJson(entry.data);
  return {
    kind: 'audit',
    id: `${entry.projectId}:${entry.seq}`,
    projectId: entry.projectId,
    title: `${entry.action}${entry.tool === null ? '' : ` ${entry.tool}`} by ${entry.actor.id}`,
    text: [
      entry.action,
      entry.tool ?? '',
      entry.threadId ?? '',
      data.length > 2000 ? data.slice(0, 2000) : data,
    ]
      .filter(Boolean)
      .join(' '),
    tags: [entry.action],
    fields,
    updatedAt: entry.at,
  };
}
