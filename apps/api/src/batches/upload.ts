import type { IncomingMessage } from 'node:http';
import {
  deleteStoredFile,
  newFileId,
  saveStoredFile,
  type FileStore,
  type FileWriter,
  type StoredFile,
} from '@moa-queue/contract';
import busboy from 'busboy';
import type { Redis } from 'ioredis';
import type { Readable } from 'node:stream';
import { ApiError } from '../api-error.js';

/** Counts non-blank lines and checks UTF-8 as the bytes stream by, holding none of them. */
class ContentStats {
  lines = 0;
  utf8 = true;
  private lineHasContent = false;
  private readonly decoder = new TextDecoder('utf-8', { fatal: true });

  add(data: Buffer): void {
    for (let index = 0; index < data.length; index += 1) {
      const byte = data[index];
      if (byte === 0x0a) {
        if (this.lineHasContent) this.lines += 1;
        this.lineHasContent = false;
      } else if (!this.lineHasContent && byte !== 0x20 && byte !== 0x09 && byte !== 0x0d) {
        this.lineHasContent = true;
      }
    }
    if (this.utf8) {
      try {
        this.decoder.decode(data, { stream: true });
      } catch {
        this.utf8 = false;
      }
    }
  }

  end(): void {
    if (this.lineHasContent) this.lines += 1;
    if (this.utf8) {
      try {
        this.decoder.decode();
      } catch {
        this.utf8 = false;
      }
    }
  }
}

function tooLarge(maxFileBytes: number): ApiError {
  return new ApiError(
    413,
    `File is larger than the limit of ${maxFileBytes} bytes`,
    'invalid_request_error',
    'file',
    'file_too_large',
    { connection: 'close' },
  );
}

/**
 * Receives `POST /v1/files` (multipart: `file` and `purpose`), streaming the
 * file into the file store: never more than one piece in memory, and the
 * request is read only as fast as the store takes the pieces. The content
 * is committed only once the whole upload is accepted, then its metadata
 * saved: an upload that fails or is cut off leaves no file.
 */
export async function receiveUpload(
  request: IncomingMessage,
  redis: Redis,
  prefix: string,
  files: FileStore,
  options: { maxFileBytes: number; tenant: string },
): Promise<StoredFile> {
  const { maxFileBytes } = options;
  if (!(request.headers['content-type'] ?? '').toLowerCase().startsWith('multipart/form-data')) {
    throw new ApiError(
      415,
      `Content-Type must be multipart/form-data, got ${request.headers['content-type'] ?? 'none'}`,
      'invalid_request_error',
      null,
      'unsupported_media_type',
    );
  }
  // An honest Content-Length over the limit (plus room for the form's other parts) is refused unread.
  if (Number(request.headers['content-length'] ?? 0) > maxFileBytes + 64 * 1024) throw tooLarge(maxFileBytes);

  const fileId = newFileId();
  const fields = new Map<string, string>();
  let stored: Promise<{ bytes: number; stats: ContentStats; filename: string; over: boolean }> | undefined;
  let writer: FileWriter | undefined;

  const store = async (stream: Readable, filename: string) => {
    writer = await files.create(fileId);
    const stats = new ContentStats();
    let over = false;
    for await (const data of stream as AsyncIterable<Buffer>) {
      if (over) continue; // drain the rest of the part without keeping it
      if (writer.bytes + data.length > maxFileBytes) {
        over = true;
        continue;
      }
      stats.add(data);
      await writer.write(data);
    }
    stats.end();
    return { bytes: writer.bytes, stats, filename, over };
  };

  try {
    await new Promise<void>((resolve, reject) => {
      let parser: busboy.Busboy;
      try {
        parser = busboy({
          headers: request.headers,
          limits: { files: 1, fields: 16, fieldSize: 4096, fileSize: maxFileBytes + 1 },
          // Clients (the openai SDK, browsers) send a file name's UTF-8 bytes as they are; busboy's default reads them as Latin-1.
          defParamCharset: 'utf8',
        });
      } catch (error) {
        reject(
          new ApiError(
            400,
            `Invalid multipart body: ${(error as Error).message}`,
            'invalid_request_error',
            null,
            'invalid_multipart',
          ),
        );
        return;
      }
      parser.on('file', (name, stream, info) => {
        if (name !== 'file' || stored) {
          stream.resume();
          return;
        }
        stored = store(stream, info.filename || 'upload.jsonl');
        stored.catch(() => stream.resume());
      });
      parser.on('field', (name, value) => fields.set(name, value));
      parser.on('close', () => resolve());
      parser.on('error', (error: Error) =>
        reject(
          new ApiError(
            400,
            `Invalid multipart body: ${error.message}`,
            'invalid_request_error',
            null,
            'invalid_multipart',
          ),
        ),
      );
      request.on('aborted', () =>
        reject(
          new ApiError(
            400,
            'request aborted by the client',
            'invalid_request_error',
            null,
            'request_aborted',
          ),
        ),
      );
      request.pipe(parser);
    });
    if (!stored)
      throw new ApiError(
        400,
        'Missing the file part "file"',
        'invalid_request_error',
        'file',
        'missing_file',
      );
    const { bytes, stats, filename, over } = await stored;
    if (over) throw tooLarge(maxFileBytes);
    const purpose = fields.get('purpose');
    if (purpose !== 'batch') {
      throw new ApiError(
        400,
        purpose === undefined
          ? 'Missing purpose: only "batch" is supported'
          : `Invalid purpose ${JSON.stringify(purpose)}: only "batch" is supported`,
        'invalid_request_error',
        'purpose',
        'invalid_value',
      );
    }
    const file: StoredFile = {
      id: fileId,
      tenant: options.tenant,
      bytes,
      createdAt: Math.floor(Date.now() / 1000),
      filename: filename.slice(0, 512),
      purpose,
      lines: stats.lines,
      utf8: stats.utf8,
    };
    await writer!.commit();
    await saveStoredFile(redis, prefix, file);
    return file;
  } catch (error) {
    request.unpipe();
    request.resume();
    await stored?.catch(() => undefined);
    await writer?.abort();
    await deleteStoredFile(redis, prefix, files, fileId);
    throw error;
  }
}
