export {
  AuditLog,
  auditSearchDoc,
  auditSearchDocs,
  entryHash,
  GENESIS_HASH,
  redactSecrets,
} from './audit-log.js';
export { auditKeyId, createAuditKeyring, legacyAuditKey, loadAuditKeyring } from './audit-keys.js';
export type { AuditKey, AuditKeyring } from './audit-keys.js';
export type {
  AuditActor,
  AuditEntry,
  AuditEntryInput,
  AuditLogOptions,
  AuditProblem,
  AuditQuery,
  AuditVerifyOptions,
  AuditVerifyResult,
} from './audit-log.js';
