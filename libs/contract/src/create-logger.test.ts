import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogger } from './create-logger.js';

function capture() {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk, _encoding, callback) {
      lines.push(String(chunk));
      callback();
    },
  });
  return { lines, stream };
}

describe('createLogger', () => {
  it('writes JSON lines with the service and never the secrets it is handed', () => {
    const { lines, stream } = capture();
    const logger = createLogger('moa-test', 'info', false, stream);
    logger.info(
      {
        requestId: 'job_1',
        headers: { authorization: 'Bearer sk-live-123', cookie: 'moa_console_key=k' },
        provider: { apiKey: 'sk-provider-456' },
        webhookSecret: 'whsec_abc',
      },
      'hello',
    );
    const line = JSON.parse(lines[0]!) as Record<string, unknown>;
    expect(line).toMatchObject({ service: 'moa-test', requestId: 'job_1', msg: 'hello' });
    const text = lines.join('');
    for (const secret of ['sk-live-123', 'moa_console_key=k', 'sk-provider-456', 'whsec_abc'])
      expect(text).not.toContain(secret);
    expect(text).toContain('[redacted]');
  });

  it('honours the level', () => {
    const { lines, stream } = capture();
    const logger = createLogger('moa-test', 'warn', false, stream);
    logger.info('quiet');
    logger.warn('loud');
    expect(lines).toHaveLength(1);
  });
});
