export {
  AuditLog,
  auditSearchDoc,
  auditSearchDocs,
  entryHash,
  GENESIS_HASH,
  redactSecrets,
} from './audit-log.js';
export type {
  AuditActor,
  AuditEntry,
  AuditEntryInput,
  AuditLogOptions,
  AuditProblem,
  AuditQuery,
  AuditVerifyResult,
} from './audit-log.js';
