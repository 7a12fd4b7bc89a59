import {
  deleteStoredFile,
  fileObject,
  FILE_ID_PATTERN,
  readFileChunks,
  readStoredFile,
} from '@moa-queue/contract';
import { Router, type Response } from 'express';
import { ApiError } from '../api-error.js';
import { methodNotAllowed } from '../middleware/error-handler.js';
import type { BatchRouteDependencies } from './batch-options.js';
import { receiveUpload } from './upload.js';

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

/**
 * `POST /v1/files` (multipart, `purpose=batch`), `GET /v1/files/{id}`,
 * `GET /v1/files/{id}/content`, `DELETE /v1/files/{id}`. Mounted before the
 * JSON body parser: uploads are streamed, never buffered.
 */
export function filesRouter(dependencies: BatchRouteDependencies): Router {
  const router = Router();
  const { redis, queues } = dependencies;
  const load = async (id: string) => {
    const file = FILE_ID_PATTERN.test(id) ? await readStoredFile(redis, queues.prefix, id) : undefined;
    if (!file) throw fileNotFound(id);
    return file;
  };

  router
    .route('/v1/files')
    .post(async (request, response) => {
      const file = await receiveUpload(request, redis, queues.prefix, dependencies.options.maxFileBytes);
      response.json(fileObject(file));
    })
    .all(methodNotAllowed(['POST']));

  router
    .route('/v1/files/:id')
    .get(async (request, response) => {
      response.json(fileObject(await load(request.params.id)));
    })
    .delete(async (request, response) => {
      const file = await load(request.params.id);
      await deleteStoredFile(redis, queues.prefix, file.id);
      response.json({ id: file.id, object: 'file', deleted: true });
    })
    .all(methodNotAllowed(['GET', 'DELETE']));

  router
    .route('/v1/files/:id/content')
    .get(async (request, response) => {
      const file = await load(request.params.id);
      response.status(200).set({
        'content-type': 'application/octet-stream',
        'content-length': String(file.bytes),
        'content-disposition': `attachment; filename="${file.filename.replace(/["\\\r\n]/g, '_')}"`,
      });
      let closed = false;
      response.on('close', () => {
        closed = true;
      });
      // Chunk by chunk from Redis, waiting for the socket to drain: memory stays flat whatever the size.
      for await (const chunk of readFileChunks(redis, queues.prefix, file.id)) {
        if (closed) return;
        if (!response.write(chunk)) await drained(response);
      }
      response.end();
    })
    .all(methodNotAllowed(['GET']));

  return router;
}
