import type { RunnableConfig } from '@langchain/core/runnables';
import {
  BaseCheckpointSaver,
  TASKS,
  WRITES_IDX_MAP,
  compareWritesSortKeys,
  copyCheckpoint,
  getCheckpointId,
  maxChannelVersion,
  writesSortKey,
  type ChannelVersions,
  type Checkpoint,
  type CheckpointListOptions,
  type CheckpointMetadata,
  type CheckpointPendingWrite,
  type CheckpointTuple,
  type PendingWrite,
  type SerializerProtocol,
} from '@langchain/langgraph-checkpoint';
import type { Kysely } from 'kysely';
import type { Database } from '../services/infra/db/schema.js';
import {
  CheckpointMemo,
  type BlobRow,
  type CheckpointRow,
  type Written,
  type WriteRow,
} from './checkpoint-memo.js';

function sortWrites(rows: WriteRow[]): WriteRow[] {
  return rows
    .map((row) => ({ row, key: writesSortKey(row.task_path, row.task_id, Number(row.idx)) }))
    .sort((a, b) => compareWritesSortKeys(a.key, b.key))
    .map(({ row }) => row);
}

function toBuffer(data: Uint8Array): Buffer {
  return Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
}

function requireThreadId(config: RunnableConfig, what: string): string {
  const threadId = config.configurable?.thread_id as unknown;
  if (typeof threadId !== 'string' || threadId === '') {
    throw new Error(
      `Failed to ${what}: the RunnableConfig has no "thread_id" in "configurable"; pass { configurable: { thread_id: "<conversation id>" } }`,
    );
  }
  return threadId;
}

/**
 * LangGraph checkpointer on Kysely: the same code stores checkpoints and pending writes in SQLite
 * (embedded) and MySQL/MariaDB (blobs as BLOB/LONGBLOB), so a conversation survives a restart.
 */
export class KyselySaver extends BaseCheckpointSaver {
  private readonly memo: CheckpointMemo;

  constructor(
    private readonly db: Kysely<Database>,
    serde?: SerializerProtocol,
  ) {
    super(serde);
    this.memo = new CheckpointMemo(db);
  }

  async getTuple(config: RunnableConfig): Promise<CheckpointTuple | undefined> {
    const threadId = config.configurable?.thread_id as string | undefined;
    if (threadId === undefined) return undefined;
    const ns = (config.configurable?.checkpoint_ns as string | undefined) ?? '';
    const checkpointId = getCheckpointId(config);
    const mine = this.memo.settled(`${threadId}\0${ns}`);
    if (
      mine !== undefined &&
      (!checkpointId || checkpointId === mine.row.checkpoint_id) &&
      (await this.memo.stillNewest(mine, !checkpointId))
    ) {
      return this.toTuple(mine.row, mine);
    }
    let query = this.db
      .selectFrom('agent_checkpoints')
      .selectAll()
      .where('thread_id', '=', threadId)
      .where('checkpoint_ns', '=', ns);
    query = checkpointId
      ? query.where('checkpoint_id', '=', checkpointId)
      : query.orderBy('checkpoint_id', 'desc').limit(1);
    const row = await query.executeTakeFirst();
    if (row === undefined) return undefined;
    return this.toTuple(row);
  }

  async *list(config: RunnableConfig, options?: CheckpointListOptions): AsyncGenerator<CheckpointTuple> {
    const { before, filter } = options ?? {};
    let limit = options?.limit;
    const threadId = config.configurable?.thread_id as string | undefined;
    const ns = config.configurable?.checkpoint_ns as string | undefined;
    const checkpointId = config.configurable?.checkpoint_id as string | undefined;
    const beforeId = before?.configurable?.checkpoint_id as string | undefined;
    const filterEntries = Object.entries(filter ?? {});
    let query = this.db.selectFrom('agent_checkpoints').selectAll();
    if (threadId !== undefined) query = query.where('thread_id', '=', threadId);
    if (ns !== undefined) query = query.where('checkpoint_ns', '=', ns);
    if (checkpointId) query = query.where('checkpoint_id', '=', checkpointId);
    if (beforeId) query = query.where('checkpoint_id', '<', beforeId);
    query = query.orderBy('checkpoint_id', 'desc').orderBy('thread_id').orderBy('checkpoint_ns');
    // Metadata is a serialized blob, so a filter is applied after decoding; without one the limit goes to SQL.
    if (filterEntries.length === 0 && limit !== undefined) query = query.limit(Math.max(0, limit));
    const rows = await query.execute();
    for (const row of rows) {
      if (limit !== undefined && limit <= 0) return;
      if (filterEntries.length > 0) {
        const metadata = (await this.serde.loadsTyped(row.metadata_type, row.metadata)) as Record<
          string,
          unknown
        >;
        if (!filterEntries.every(([k, v]) => metadata[k] === v)) continue;
      }
      if (limit !== undefined) limit -= 1;
      yield await this.toTuple(row);
    }
  }

  async put(
    config: RunnableConfig,
    checkpoint: Checkpoint,
    metadata: CheckpointMetadata,
    newVersions: ChannelVersions,
  ): Promise<RunnableConfig> {
    const threadId = requireThreadId(config, 'put checkpoint');
    const ns = (config.configurable?.checkpoint_ns as string | undefined) ?? '';
    const parentId = (config.configurable?.checkpoint_id as string | undefined) ?? null;
    const { channel_values: values, ...rest } = copyCheckpoint(checkpoint);
    // Channel values live in agent_checkpoint_blobs, one row per (channel, version), written only when the version is new.
    const blobs: BlobRow[] = await Promise.all(
      Object.entries(newVersions).map(async ([channel, version]) => {
        const base = { thread_id: threadId, checkpoint_ns: ns, channel, version: String(version) };
        if (!Object.prototype.hasOwnProperty.call(values, channel))
          return { ...base, value_type: 'empty', value: null };
        const [valueType, bytes] = await this.serde.dumpsTyped(values[channel]);
        return { ...base, value_type: valueType, value: toBuffer(bytes) };
      }),
    );
    const [[checkpointType, checkpointBytes], [metadataType, metadataBytes]] = await Promise.all([
      this.serde.dumpsTyped({ ...rest, channel_values: {} }),
      this.serde.dumpsTyped(metadata),
    ]);
    const row: CheckpointRow = {
      thread_id: threadId,
      checkpoint_ns: ns,
      checkpoint_id: checkpoint.id,
      parent_checkpoint_id: parentId,
      checkpoint_type: checkpointType,
      checkpoint: toBuffer(checkpointBytes),
      metadata_type: metadataType,
      metadata: toBuffer(metadataBytes),
      created_at: Date.now(),
    };
    const writeCheckpoint = (db: Kysely<Database>) =>
      db.replaceInto('agent_checkpoints').values(row).execute();
    // One statement is atomic on its own; a transaction (BEGIN + COMMIT) only when blobs go with it.
    if (blobs.length === 0) await writeCheckpoint(this.db);
    else {
      await this.db.transaction().execute(async (trx) => {
        await trx.insertInto('agent_checkpoint_blobs').orIgnore().values(blobs).execute();
        await writeCheckpoint(trx);
      });
    }
    this.memo.remember(threadId, ns, row, blobs, checkpoint.channel_versions);
    return { configurable: { thread_id: threadId, checkpoint_ns: ns, checkpoint_id: checkpoint.id } };
  }

  async putWrites(
    config: RunnableConfig,
    writes: PendingWrite[],
    taskId: string,
    taskPath?: string,
  ): Promise<void> {
    const threadId = requireThreadId(config, 'put writes');
    const ns = (config.configurable?.checkpoint_ns as string | undefined) ?? '';
    const checkpointId = config.configurable?.checkpoint_id as string | undefined;
    if (!checkpointId)
      throw new Error('Failed to put writes: the RunnableConfig has no "checkpoint_id" in "configurable"');
    if (writes.length === 0) return;
    const rows: WriteRow[] = await Promise.all(
      writes.map(async ([channel, value], i) => {
        const [valueType, bytes] = await this.serde.dumpsTyped(value);
        return {
          thread_id: threadId,
          checkpoint_ns: ns,
          checkpoint_id: checkpointId,
          task_id: taskId,
          idx: WRITES_IDX_MAP[channel] ?? i,
          task_path: taskPath ?? '',
          channel,
          value_type: valueType,
          value: toBuffer(bytes),
        };
      }),
    );
    // Special channels (errors, interrupts) replace their earlier write; regular writes are kept as first written.
    const special = rows.filter((r) => r.idx < 0);
    const regular = rows.filter((r) => r.idx >= 0);
    await this.memo.writes(`${threadId}\0${ns}`, checkpointId, special, regular, () =>
      this.storeWrites(special, regular),
    );
  }

  private async storeWrites(special: WriteRow[], regular: WriteRow[]): Promise<void> {
    if (special.length === 0)
      await this.db.insertInto('agent_checkpoint_writes').orIgnore().values(regular).execute();
    else if (regular.length === 0)
      await this.db.replaceInto('agent_checkpoint_writes').values(special).execute();
    else {
      await this.db.transaction().execute(async (trx) => {
        await trx.replaceInto('agent_checkpoint_writes').values(special).execute();
        await trx.insertInto('agent_checkpoint_writes').orIgnore().values(regular).execute();
      });
    }
  }

  async deleteThread(threadId: string): Promise<void> {
    this.memo.forgetThread(threadId);
    await this.db.transaction().execute(async (trx) => {
      await trx.deleteFrom('agent_checkpoint_writes').where('thread_id', '=', threadId).execute();
      await trx.deleteFrom('agent_checkpoint_blobs').where('thread_id', '=', threadId).execute();
      await trx.deleteFrom('agent_checkpoints').where('thread_id', '=', threadId).execute();
    });
  }

  private async loadWrites(
    threadId: string,
    ns: string,
    checkpointId: string,
    channel?: string,
  ): Promise<WriteRow[]> {
    let query = this.db
      .selectFrom('agent_checkpoint_writes')
      .selectAll()
      .where('thread_id', '=', threadId)
      .where('checkpoint_ns', '=', ns)
      .where('checkpoint_id', '=', checkpointId);
    if (channel !== undefined) query = query.where('channel', '=', channel);
    return sortWrites(await query.execute());
  }

  private async loadChannelValues(
    threadId: string,
    ns: string,
    versions: ChannelVersions,
  ): Promise<Record<string, unknown>> {
    const pairs = Object.entries(versions ?? {});
    if (pairs.length === 0) return {};
    const rows = await this.db
      .selectFrom('agent_checkpoint_blobs')
      .selectAll()
      .where('thread_id', '=', threadId)
      .where('checkpoint_ns', '=', ns)
      .where((eb) =>
        eb.or(
          pairs.map(([channel, version]) =>
            eb.and([eb('channel', '=', channel), eb('version', '=', String(version))]),
          ),
        ),
      )
      .execute();
    return this.decodeBlobs(rows);
  }

  private async decodeBlobs(rows: BlobRow[]): Promise<Record<string, unknown>> {
    const values: Record<string, unknown> = {};
    for (const row of rows) {
      if (row.value_type === 'empty' || row.value === null) continue;
      values[row.channel] = await this.serde.loadsTyped(row.value_type, row.value);
    }
    return values;
  }

  private async toTuple(row: CheckpointRow, mine?: Written): Promise<CheckpointTuple> {
    const { thread_id, checkpoint_ns, checkpoint_id, parent_checkpoint_id } = row;
    const [checkpoint, metadata, writes] = await Promise.all([
      this.serde.loadsTyped(row.checkpoint_type, row.checkpoint) as Promise<Checkpoint>,
      this.serde.loadsTyped(row.metadata_type, row.metadata) as Promise<CheckpointMetadata>,
      mine === undefined
        ? this.loadWrites(thread_id, checkpoint_ns, checkpoint_id)
        : Promise.resolve(sortWrites(mine.writes)),
    ]);
    checkpoint.channel_values =
      mine === undefined
        ? await this.loadChannelValues(thread_id, checkpoint_ns, checkpoint.channel_versions)
        : await this.decodeBlobs([...mine.blobs.values()]);
    if (checkpoint.v < 4 && parent_checkpoint_id !== null) {
      await this.migratePendingSends(checkpoint, thread_id, checkpoint_ns, parent_checkpoint_id);
    }
    const pendingWrites: CheckpointPendingWrite[] = await Promise.all(
      writes.map(
        async (w) =>
          [
            w.task_id,
            w.channel,
            await this.serde.loadsTyped(w.value_type, w.value),
          ] as CheckpointPendingWrite,
      ),
    );
    const tuple: CheckpointTuple = {
      config: { configurable: { thread_id, checkpoint_ns, checkpoint_id } },
      checkpoint,
      metadata,
      pendingWrites,
    };
    if (parent_checkpoint_id !== null) {
      tuple.parentConfig = {
        configurable: { thread_id, checkpoint_ns, checkpoint_id: parent_checkpoint_id },
      };
    }
    return tuple;
  }

  /** Checkpoints older than format v4 kept pending sends as writes on their parent; fold them into the TASKS channel. */
  private async migratePendingSends(
    checkpoint: Checkpoint,
    threadId: string,
    ns: string,
    parentId: string,
  ): Promise<void> {
    const sends = await this.loadWrites(threadId, ns, parentId, TASKS);
    const values = await Promise.all(sends.map((w) => this.serde.loadsTyped(w.value_type, w.value)));
    const mutable = checkpoint as {
      channel_values: Record<string, unknown>;
      channel_versions: Record<string, string | number>;
    };
    mutable.channel_values ??= {};
    mutable.channel_values[TASKS] = values;
    mutable.channel_versions ??= {};
    const versions = Object.values(mutable.channel_versions);
    mutable.channel_versions[TASKS] =
      versions.length > 0 ? maxChannelVersion(...versions) : this.getNextVersion(undefined);
  }
}
