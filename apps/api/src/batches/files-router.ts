import {
  deleteStoredFile,
  fileIndexKey,
  fileObject,
  FILE_ID_PATTERN,
  FileStoreError,
  readStoredFile,
  type StoredFile,
} from '@moa-queue/contract';
import { quotasOf } from '@moa-queue/moa';
import { z } from 'zod';
import type { Response } from 'express';
import { strictRouter } from '../strict-router.js';
import { ApiError } from '../api-error.js';
import { methodNotAllowed } from '../middleware/error-handler.js';
import { canAccess, listScope, principalOf, type Principal } from '../principal.js';
import { parseOrThrow } from '../validation.js';
import { pageFromIndex, pageLimitSchema } from '../index-page.js';
import type { BatchRouteDependencies } from './batch-options.js';
import { receiveUpload } from './upload.js';
import { attachmentDisposition } from './content-disposition.js';
import { createFileBytesQuota } from './file-bytes-quota.js';

/** Resolves when the response can take more data or has closed; leaves no listener behind. */
function drained(response: Response): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      response.off('drain', done);
      response.off('close', done);
      resolve();
    };
    response.on('drain', done);
    response.on('close', done);
  });
}

function fileNotFound(id: string): ApiError {
  return new ApiError(
    404,
    `No such File object: ${JSON.stringify(id)}`,
    'invalid_request_error',
    'id',
    'file_not_found',
  );
}

const listFilesSchema = z.object({
  purpose: z.string().max(64).optional(),
  limit: pageLimitSchema(10_000),
  after: z.string().max(128).optional(),
  order: z.enum(['asc', 'desc'], { error: 'must be "asc" or "desc"' }).optional(),
});

/**
 * A page of `GET /v1/files`: the files of one tenant (or all, for an admin)
 * by creation time, filtered by purpose, from the index that
 * `saveStoredFile` keeps.
 */
async function listFiles(
  dependencies: BatchRouteDependencies,
  tenant: string | undefined,
  query: z.infer<typeof listFilesSchema>,
) {
  const { redis, queues } = dependencies;
  const { data, hasMore } = await pageFromIndex<StoredFile>(redis, fileIndexKey(queues.prefix, tenant), {
    limit: query.limit ?? 10_000,
    ...(query.after === undefined ? {} : { after: query.after }),
    ...(query.order === undefined ? {} : { order: query.order }),
    load: (ids) => Promise.all(ids.map((id) => readStoredFile(redis, queues.prefix, id))),
    ...(query.purpose === undefined ? {} : { keep: (file: StoredFile) => file.purpose === query.purpose }),
  });
  return {
    object: 'list' as const,
    data: data.map(fileObject),
    first_id: data[0]?.id ?? null,
    last_id: data.at(-1)?.id ?? null,
    has_more: hasMore,
  };
}

/**
 * `POST /v1/files` (multipart, `purpose=batch`), `GET /v1/files` (the caller's files), `GET /v1/files/{id}`,
 * `GET /v1/files/{id}/content`, `DELETE /v1/files/{id}`. Mounted before the
 * JSON body parser: uploads are streamed, never buffered.
 */
export function filesRouter(dependencies: BatchRouteDependencies) {
  const router = strictRouter();
  const { redis, queues, files } = dependencies;
  const fileBytes = createFileBytesQuota(redis, queues.prefix);
  // Another tenant's file answers exactly as an unknown one.
  const load = async (id: string, caller: Principal) => {
    const file = FILE_ID_PATTERN.test(id) ? await readStoredFile(redis, queues.prefix, id) : undefined;
    if (!file || !canAccess(caller, file.tenant)) throw fileNotFound(id);
    return file;
  };

  router
    .route('/v1/files')
    .post(async (request, response) => {
      const { tenant } = principalOf(response);
      const { maxFileBytes: quota } = quotasOf(dependencies.config, tenant);
      // Refused before a byte is read when the quota is already full, and after the upload when this file passes it.
      await fileBytes.check(tenant, quota, { full: true });
      const file = await receiveUpload(request, redis, queues.prefix, files, {
        maxFileBytes: dependencies.options.maxFileBytes,
        tenant,
      });
      try {
        await fileBytes.check(tenant, quota);
      } catch (error) {
        await deleteStoredFile(redis, queues.prefix, files, file.id, tenant);
        throw error;
      }
      response.json(fileObject(file));
    })
    .get(async (request, response) => {
      const query = parseOrThrow(listFilesSchema, request.query);
      const page = await listFiles(dependencies, listScope(principalOf(response)), query);
      response.json(page);
    })
    .all(methodNotAllowed(['GET', 'POST']));

  router
    .route('/v1/files/:id')
    .get(async (request, response) => {
      response.json(fileObject(await load(request.params.id, principalOf(response))));
    })
    .delete(async (request, response) => {
      const file = await load(request.params.id, principalOf(response));
      await deleteStoredFile(redis, queues.prefix, files, file.id, file.tenant);
      response.json({ id: file.id, object: 'file', deleted: true });
    })
    .all(methodNotAllowed(['GET', 'DELETE']));

  router
    .route('/v1/files/:id/content')
    .get(async (request, response) => {
      const file = await load(request.params.id, principalOf(response));
      // Opened before the headers go out: content missing from the store is an error response, not a cut-off body.
      const content = file.bytes === 0 ? undefined : files.read(file.id)[Symbol.asyncIterator]();
      const first = await content?.next().catch((error: unknown) => {
        if (!(error instanceof FileStoreError && error.code === 'not_committed')) throw error;
        throw new ApiError(
          500,
          `The content of ${file.id} is not in the file store: do the API and the workers have the same MOA_FILES_DIR?`,
          'server_error',
          'id',
          'file_content_missing',
        );
      });
      response.status(200).set({
        'content-type': 'application/octet-stream',
        'content-length': String(file.bytes),
        'content-disposition': attachmentDisposition(file.filename),
      });
      let closed = false;
      response.on('close', () => {
        closed = true;
      });
      // Piece by piece from the store, waiting for the socket to drain: memory stays flat whatever the size.
      for (let piece = first; piece && !piece.done; piece = await content!.next()) {
        if (closed) {
          await content!.return?.();
          return;
        }
        if (!response.write(piece.value)) await drained(response);
      }
      response.end();
    })
    .all(methodNotAllowed(['GET']));

  return router;
}
