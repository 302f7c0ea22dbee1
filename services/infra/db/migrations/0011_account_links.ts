import type { Kysely } from 'kysely';
import type { DbDialect } from '../port.js';
import { columnTypes } from '../migrate.js';

/**
 * Account bindings: the Firebase uid bound to an account at its first verified sign-in, chat
 * (Slack/Mattermost) identities linked to accounts, and the one-time codes that confirm a link.
 */
export async function up(db: Kysely<any>, dialect: DbDialect): Promise<void> {
  const t = columnTypes(dialect);
  await db.schema.alterTable('users').addColumn('firebase_uid', 'varchar(128)').execute();
  await db.schema.createIndex('users_firebase_uid').unique().on('users').column('firebase_uid').execute();
  await db.schema
    .createTable('chat_links')
    .addColumn('id', t.id, (c) => c.primaryKey())
    .addColumn('platform', 'varchar(16)', (c) => c.notNull())
    .addColumn('team_id', t.id, (c) => c.notNull())
    .addColumn('team_name', 'varchar(200)', (c) => c.notNull())
    .addColumn('chat_user_id', t.id, (c) => c.notNull())
    .addColumn('chat_user_name', 'varchar(200)', (c) => c.notNull())
    .addColumn('user_id', t.id, (c) => c.notNull())
    .addColumn('created_at', t.time, (c) => c.notNull())
    .execute();
  await db.schema
    .createIndex('chat_links_identity')
    .unique()
    .on('chat_links')
    .columns(['platform', 'team_id', 'chat_user_id'])
    .execute();
  await db.schema.createIndex('chat_links_user').on('chat_links').column('user_id').execute();
  await db.schema
    .createTable('chat_link_codes')
    .addColumn('code_hash', 'varchar(64)', (c) => c.primaryKey())
    .addColumn('platform', 'varchar(16)', (c) => c.notNull())
    .addColumn('team_id', t.id, (c) => c.notNull())
    .addColumn('team_name', 'varchar(200)', (c) => c.notNull())
    .addColumn('chat_user_id', t.id, (c) => c.notNull())
    .addColumn('chat_user_name', 'varchar(200)', (c) => c.notNull())
    .addColumn('created_at', t.time, (c) => c.notNull())
    .addColumn('expires_at', t.time, (c) => c.notNull())
    .addColumn('used_at', t.time)
    .execute();
}
