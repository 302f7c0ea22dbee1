import type http from 'node:http';
import type { Redis } from 'ioredis';
import { Server, type Socket } from 'socket.io';
import { z } from 'zod';
import type { Role } from '../core/context.js';
import { describeZodError, PlatformError } from '../core/errors.js';
import type { DomainEventBase } from '../core/events.js';
import { newId } from '../core/ids.js';
import type { Logger } from '../core/log.js';
import { callContext, requireRole, type Authenticator, type RequestAuth } from './auth.js';
import { toPlatformError } from './http-errors.js';
import type { WebServices } from './web-services.js';

const ROOM_KINDS = ['conversation', 'job', 'rollout'] as const;

const subscribeSchema = z.object({ kind: z.enum(ROOM_KINDS), id: z.string().min(1).max(191) });
const sendSchema = z.object({
  threadId: z.string().min(1).max(191).optional(),
  message: z.string().trim().min(1, 'say what you want done').max(4000),
});
const decideSchema = z.object({
  threadId: z.string().min(1).max(191),
  approvalId: z.string().min(1).max(64),
  decision: z.enum(['approve', 'reject', 'edit']),
  args: z.record(z.string(), z.unknown()).optional(),
  reason: z.string().trim().max(500).optional(),
});

/** One client event: its payload schema and the role it needs (the security matrix test is generated from this table). */
export interface SocketEventDef {
  role: Role;
  schema: z.ZodType;
  summary: string;
  /**
   * What the event may change: `nothing` (this socket's own room membership), or `agent` (hands the
   * request to the agent, whose every changing step waits for an approval and runs through runTool).
   * test/security/mutation-matrix.test.ts holds every event to it.
   */
  changes: 'nothing' | 'agent';
}

/** Every event a client may send; each is authenticated at the handshake, re-checked, validated and authorised. */
export const SOCKET_EVENTS = {
  subscribe: {
    role: 'viewer',
    schema: subscribeSchema,
    summary: 'join the room of a conversation, training job or rollout of your project',
    changes: 'nothing',
  },
  unsubscribe: { role: 'viewer', schema: subscribeSchema, summary: 'leave a room', changes: 'nothing' },
  'chat:send': {
    role: 'viewer',
    schema: sendSchema,
    summary: 'start a conversation or send a message; agent events stream to its room',
    changes: 'agent',
  },
  'chat:decide': {
    role: 'operator',
    schema: decideSchema,
    summary: 'decide the approval a conversation waits for',
    changes: 'agent',
  },
} satisfies Record<string, SocketEventDef>;

/** Events the server sends: `agent` (typed agent stream events), `event` (domain events), `chat:error`. */
export const SERVER_EVENTS = ['agent', 'event', 'chat:error'] as const;

/** Domain events every instance derives from broker telemetry itself: sent to local sockets only when instances share Redis. */
const LOCAL_EVENT_TYPES = new Set([
  'training.metrics',
  'training.log',
  'training.status',
  'rollout.progress',
  'device.updated',
]);
const REAUTH_MS = 60_000;
/** Client events one socket may send per 10-second window. */
export const SOCKET_EVENT_LIMIT = 100;
const SOCKET_WINDOW_MS = 10_000;

/** What the socket server needs. */
export interface SocketDeps {
  services: WebServices;
  authenticator: Authenticator;
  log: Logger;
  redisUrl?: string;
  /** Origins allowed for cookie-authenticated sockets besides the request's own host. */
  publicUrl?: string;
  /** How old a socket's credential check may get before it is checked again, even on a silent socket (default 60 s). */
  reauthMs?: number;
}

/** Account events after which the user's open sockets are checked again at once (sign-out, revoked token, new role). */
const RECHECK_ON = new Set(['accounts.logout', 'accounts.token_revoked', 'accounts.role_changed']);

/** A running socket.io server bound to the HTTP server. */
export interface SocketServer {
  io: Server;
  close(): Promise<void>;
}

/** The room of a conversation, job or rollout in a project. */
export function roomOf(projectId: string, kind: (typeof ROOM_KINDS)[number] | 'project', id = ''): string {
  return kind === 'project' ? `p:${projectId}` : `p:${projectId}:${kind}:${id}`;
}

type SocketData = {
  auth: RequestAuth;
  checkedAt: number;
  headers: http.IncomingHttpHeaders;
  projectHint: string | undefined;
  window: number;
  count: number;
};

function handshakeHeaders(socket: Socket): http.IncomingHttpHeaders {
  const headers = { ...socket.handshake.headers };
  const token = (socket.handshake.auth as { token?: unknown } | undefined)?.token;
  if (typeof token === 'string' && token !== '') headers.authorization = `Bearer ${token}`;
  return headers;
}

function sameOrigin(headers: http.IncomingHttpHeaders, publicUrl: string | undefined): boolean {
  const origin = headers.origin;
  if (origin === undefined) return true;
  const allowed = new Set<string>();
  if (headers.host) allowed.add(`http://${headers.host}`).add(`https://${headers.host}`);
  if (publicUrl) allowed.add(new URL(publicUrl).origin);
  return allowed.has(origin);
}

/** Attaches socket.io to `server`: authenticated handshake, rooms, agent and domain events forwarded as they happen. */
export async function attachSockets(server: http.Server, deps: SocketDeps): Promise<SocketServer> {
  const io = new Server(server, { serveClient: true, maxHttpBufferSize: 64 * 1024, cors: { origin: false } });
  const redis: Redis[] = [];
  if (deps.redisUrl) {
    const [{ createAdapter }, { Redis: RedisClient }] = await Promise.all([
      import('@socket.io/redis-adapter'),
      import('ioredis'),
    ]);
    const pub = new RedisClient(deps.redisUrl, { maxRetriesPerRequest: null });
    const sub = pub.duplicate();
    redis.push(pub, sub);
    io.adapter(createAdapter(pub, sub, { key: 'via:socket.io' }));
  }

  io.use(async (socket, next) => {
    try {
      const headers = handshakeHeaders(socket);
      const hint = (socket.handshake.auth as { projectId?: unknown } | undefined)?.projectId;
      const projectHint = typeof hint === 'string' ? hint : undefined;
      const auth = await deps.authenticator.authenticate(headers, projectHint);
      if (auth.via === 'cookie' && !sameOrigin(headers, deps.publicUrl))
        throw new PlatformError('forbidden', 'socket origin does not match this server');
      (socket.data as SocketData) = {
        auth,
        checkedAt: Date.now(),
        headers,
        projectHint,
        window: 0,
        count: 0,
      };
      next();
    } catch (err) {
      const pe = toPlatformError(err);
      const error = new Error(pe.message) as Error & { data?: unknown };
      error.data = { code: pe.code };
      next(error);
    }
  });

  io.on('connection', (socket) => {
    const data = socket.data as SocketData;
    void socket.join([roomOf(data.auth.projectId, 'project'), `u:${data.auth.principal.userId}`]);
    for (const [name, def] of Object.entries(SOCKET_EVENTS) as Array<
      [keyof typeof SOCKET_EVENTS, SocketEventDef]
    >) {
      socket.on(name, async (payload: unknown, ack?: unknown) => {
        const reply = typeof ack === 'function' ? (ack as (r: unknown) => void) : () => undefined;
        try {
          const slot = Math.floor(Date.now() / SOCKET_WINDOW_MS);
          if (data.window !== slot) Object.assign(data, { window: slot, count: 0 });
          if (++data.count > SOCKET_EVENT_LIMIT)
            throw new PlatformError(
              'rate_limited',
              `too many socket events; wait ${Math.ceil(SOCKET_WINDOW_MS / 1000)} s and try again`,
            );
          const auth = await fresh(socket, deps);
          requireRole(auth, def.role);
          const parsed = def.schema.safeParse(payload);
          if (!parsed.success)
            throw new PlatformError('invalid_input', `invalid ${name}: ${describeZodError(parsed.error)}`);
          await handle(socket, auth, name, parsed.data as never, reply, deps);
        } catch (err) {
          const pe = toPlatformError(err);
          if (pe.code === 'internal') deps.log.error({ err, event: name }, 'socket event failed');
          reply({ ok: false, error: { code: pe.code, message: pe.message } });
        }
      });
    }
  });

  const offs: Array<() => void> = [];
  if (deps.services.agent) {
    offs.push(
      deps.services.agent.events.on((e) => {
        io.to(roomOf(e.projectId, 'conversation', e.threadId)).emit('agent', e);
      }),
    );
  }
  offs.push(
    deps.services.events.on((e) => {
      const rooms = roomsOfEvent(e);
      if (rooms.length === 0) return;
      const target = LOCAL_EVENT_TYPES.has(e.type) ? io.local : io;
      target.to(rooms).emit('event', e);
    }),
  );

  const local = () => [...io.of('/').sockets.values()];
  offs.push(
    deps.services.events.on((e) => {
      if (!RECHECK_ON.has(e.type)) return;
      const userId = (e as DomainEventBase & { userId?: string }).userId;
      for (const socket of local()) {
        if ((socket.data as SocketData).auth?.principal.userId === userId)
          void recheck(socket, deps).catch(() => undefined);
      }
    }),
  );
  // Silent sockets only receive: check them again when their check gets old, so an expired session stops its events too.
  const reauthMs = deps.reauthMs ?? REAUTH_MS;
  const sweep = setInterval(
    () => {
      for (const socket of local()) {
        if (Date.now() - (socket.data as SocketData).checkedAt >= reauthMs)
          void recheck(socket, deps).catch(() => undefined);
      }
    },
    Math.max(50, Math.floor(reauthMs / 2)),
  );
  sweep.unref();
  offs.push(() => clearInterval(sweep));

  return {
    io,
    async close() {
      for (const off of offs) off();
      await new Promise<void>((resolve) => {
        void io.close(() => resolve());
      });
      for (const r of redis) r.disconnect();
    },
  };
}

/** The rooms a domain event goes to: its job or rollout room, and the project room for fleet, dataset, model, feedback and approval changes. */
export function roomsOfEvent(e: DomainEventBase): string[] {
  const x = e as DomainEventBase & {
    jobId?: string;
    job?: { id?: string };
    rolloutId?: string;
    rollout?: { id?: string };
  };
  if (e.type.startsWith('training.')) {
    const id = x.jobId ?? x.job?.id;
    return id ? [roomOf(e.projectId, 'job', id), roomOf(e.projectId, 'project')] : [];
  }
  if (e.type.startsWith('rollout.')) {
    const id = x.rolloutId ?? x.rollout?.id;
    return id ? [roomOf(e.projectId, 'rollout', id), roomOf(e.projectId, 'project')] : [];
  }
  if (
    ['device.', 'approval.', 'model.', 'feedback.', 'dataset.'].some((prefix) => e.type.startsWith(prefix))
  ) {
    return [roomOf(e.projectId, 'project')];
  }
  return [];
}

async function fresh(socket: Socket, deps: SocketDeps): Promise<RequestAuth> {
  const data = socket.data as SocketData;
  if (Date.now() - data.checkedAt < (deps.reauthMs ?? REAUTH_MS)) return data.auth;
  return recheck(socket, deps);
}

/**
 * Checks a socket's handshake credentials again and keeps the new role; a session that ended, a revoked
 * or expired token, or a lost membership disconnects the socket, so it receives no further events.
 */
async function recheck(socket: Socket, deps: SocketDeps): Promise<RequestAuth> {
  const data = socket.data as SocketData;
  try {
    data.auth = await deps.authenticator.authenticate(data.headers, data.projectHint);
    data.checkedAt = Date.now();
    return data.auth;
  } catch (err) {
    const pe = toPlatformError(err);
    if (pe.code === 'unavailable' || pe.code === 'internal') throw pe; // the check could not run: keep the socket, try again later
    socket.emit('chat:error', { code: pe.code, message: `${pe.message}; sign in again` });
    socket.disconnect(true);
    throw pe;
  }
}

async function handle(
  socket: Socket,
  auth: RequestAuth,
  name: keyof typeof SOCKET_EVENTS,
  payload: Record<string, unknown>,
  reply: (r: unknown) => void,
  deps: SocketDeps,
): Promise<void> {
  const ctx = callContext(auth, deps.log);
  switch (name) {
    case 'subscribe': {
      const p = payload as z.infer<typeof subscribeSchema>;
      if (p.kind === 'conversation' && deps.services.agent) await deps.services.agent.getThread(ctx, p.id);
      await socket.join(roomOf(auth.projectId, p.kind, p.id));
      reply({ ok: true });
      return;
    }
    case 'unsubscribe': {
      const p = payload as z.infer<typeof subscribeSchema>;
      await socket.leave(roomOf(auth.projectId, p.kind, p.id));
      reply({ ok: true });
      return;
    }
    case 'chat:send': {
      const agent = deps.services.agent;
      if (!agent)
        throw new PlatformError(
          'unavailable',
          'the chat agent is not enabled on this server yet; ask an admin',
        );
      const p = payload as z.infer<typeof sendSchema>;
      const threadId = p.threadId ?? newId('thr');
      if (p.threadId !== undefined) await agent.getThread(ctx, p.threadId);
      await socket.join(roomOf(auth.projectId, 'conversation', threadId));
      reply({ ok: true, threadId });
      const run =
        p.threadId === undefined
          ? agent.startConversation(ctx, { message: p.message, threadId })
          : agent.sendMessage(ctx, threadId, p.message);
      run.catch((err: unknown) => {
        const pe = toPlatformError(err);
        socket.emit('chat:error', { threadId, code: pe.code, message: pe.message });
      });
      return;
    }
    case 'chat:decide': {
      const agent = deps.services.agent;
      if (!agent)
        throw new PlatformError(
          'unavailable',
          'the chat agent is not enabled on this server yet; ask an admin',
        );
      const p = payload as z.infer<typeof decideSchema>;
      const view = await agent.decide(ctx, p.threadId, {
        approvalId: p.approvalId,
        decision: p.decision,
        ...(p.args ? { args: p.args } : {}),
        ...(p.reason ? { reason: p.reason } : {}),
      });
      reply({ ok: true, thread: view });
      return;
    }
  }
}
