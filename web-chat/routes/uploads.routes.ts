import { z } from 'zod';
import { uploadStartSchema } from '../../services/datasets/index.js';
import { type RouteDef, route } from './route.js';

const uploadParams = z.object({ id: z.string().min(1).max(64).describe('upload id (upl_…)') });
const fileStatus = z.object({ path: z.string(), size: z.number(), received: z.number() });
const uploadStatus = z.object({
  id: z.string(),
  kind: z.enum(['zip', 'folder']),
  files: z.array(fileStatus),
  bytes: z.number(),
  received: z.number(),
  complete: z.boolean(),
  chunkBytes: z.number(),
  expiresAt: z.number(),
});
const staging =
  "stages the caller's own bytes outside the database; they join a dataset only through import_dataset, an approved tool";

/** Browser uploads of a dataset: start, send chunks (resumable), finish into the project's storage area. */
export const uploadsRoutes: RouteDef[] = [
  route({
    method: 'post',
    path: '/api/uploads',
    access: 'operator',
    tag: 'datasets',
    mutation: { exempt: 'upload-staging', why: staging },
    summary: "Starts a dataset upload: the files (one .zip, or a folder's files) with their sizes",
    body: uploadStartSchema,
    response: uploadStatus,
    status: 201,
    async handler({ ctx, s, body }) {
      return s.uploads.begin(ctx, body);
    },
  }),
  route({
    method: 'get',
    path: '/api/uploads/:id',
    access: 'operator',
    tag: 'datasets',
    summary: 'Bytes received per file of an upload (resume each file from `received`)',
    params: uploadParams,
    response: uploadStatus,
    async handler({ ctx, s, params }) {
      return s.uploads.status(ctx, params.id);
    },
  }),
  route({
    method: 'post',
    path: '/api/uploads/:id/chunk',
    access: 'operator',
    tag: 'datasets',
    mutation: { exempt: 'upload-staging', why: staging },
    summary:
      'Writes one chunk (application/octet-stream body) of a file at an offset; a chunk may be sent again, never past the bytes received',
    params: uploadParams,
    query: z.object({
      path: z.string().min(1).max(1000).describe('the file, as declared when starting'),
      offset: z.coerce.number().int().min(0).describe('byte offset of the chunk'),
    }),
    body: z
      .instanceof(Buffer, { message: 'send the chunk as application/octet-stream' })
      .describe('chunk bytes'),
    response: z.object({ received: z.number() }),
    async handler({ ctx, s, params, query, body }) {
      return s.uploads.writeChunk(ctx, params.id, { path: query.path, offset: query.offset, data: body });
    },
  }),
  route({
    method: 'post',
    path: '/api/uploads/:id/finish',
    access: 'operator',
    tag: 'datasets',
    mutation: { exempt: 'upload-staging', why: staging },
    summary:
      'Checks every file arrived, extracts a zip (with the import zip checks) and moves the files into the project storage area; answers the source for import_dataset',
    params: uploadParams,
    response: z.object({ id: z.string(), source: z.string(), files: z.number(), bytes: z.number() }),
    async handler({ ctx, s, params }) {
      return s.uploads.finish(ctx, params.id);
    },
  }),
];
