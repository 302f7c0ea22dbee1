import type { Generated } from 'kysely';

/** Projects, users, memberships, sessions, API tokens and the search outbox. */
export interface CoreTables {
  projects: { id: string; name: string; description: string; created_at: number };
  users: {
    id: string;
    email: string;
    name: string;
    /** scrypt hash `scrypt$N$r$p$salt$hash` (base64 salt and hash), null for Firebase users. */
    password_hash: string | null;
    provider: 'local' | 'firebase';
    /** Firebase uid bound at the first sign-in with a verified e-mail; later sign-ins match by it. */
    firebase_uid: string | null;
    disabled: number;
    created_at: number;
  };
  memberships: {
    project_id: string;
    user_id: string;
    role: 'viewer' | 'operator' | 'approver' | 'admin';
    created_at: number;
  };
  sessions: {
    id_hash: string;
    user_id: string;
    created_at: number;
    expires_at: number;
    last_seen_at: number;
  };
  api_tokens: {
    id: string;
    /** sha256 of the secret part; the secret itself is never stored. */
    token_hash: string;
    name: string;
    user_id: string;
    project_id: string;
    role: 'viewer' | 'operator' | 'approver' | 'admin';
    scopes: string;
    created_at: number;
    expires_at: number | null;
    revoked_at: number | null;
    last_used_at: number | null;
  };
  search_outbox: {
    seq: Generated<number>;
    kind: string;
    doc_id: string;
    op: 'upsert' | 'delete';
    /** The SearchDoc as JSON for upserts, null for deletes. */
    doc: string | null;
    created_at: number;
  };
  kv: { k: string; v: string; updated_at: number };
}
