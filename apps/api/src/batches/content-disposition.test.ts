import { describe, expect, it } from 'vitest';
import { attachmentDisposition } from './content-disposition.js';

describe('attachmentDisposition', () => {
  it('keeps a plain ASCII name as a quoted filename', () => {
    expect(attachmentDisposition('batch_abc_output.jsonl')).toBe(
      'attachment; filename="batch_abc_output.jsonl"',
    );
  });

  it.each([
    ['données.jsonl', `attachment; filename="donn_es.jsonl"; filename*=UTF-8''donn%C3%A9es.jsonl`],
    ['数据.jsonl', `attachment; filename="__.jsonl"; filename*=UTF-8''%E6%95%B0%E6%8D%AE.jsonl`],
    ['a"b\\c.jsonl', `attachment; filename="a_b_c.jsonl"; filename*=UTF-8''a%22b%5Cc.jsonl`],
    ["it's (1)*.jsonl", `attachment; filename="it's (1)*.jsonl"`],
    ['100%.jsonl', `attachment; filename="100_.jsonl"; filename*=UTF-8''100%25.jsonl`],
    [
      'line\r\nbreak.jsonl',
      `attachment; filename="line__break.jsonl"; filename*=UTF-8''line%0D%0Abreak.jsonl`,
    ],
    ["ü's (1)*", `attachment; filename="_'s (1)*"; filename*=UTF-8''%C3%BC%27s%20%281%29%2A`],
  ])('encodes %j per RFC 6266 / 5987', (name, expected) => {
    expect(attachmentDisposition(name)).toBe(expected);
  });

  it('always yields a value Node accepts as a header (Latin-1, no control characters)', () => {
    for (const name of ['données', '数据', '\u0000\u007f', '😀.jsonl', 'a'.repeat(512)]) {
      expect(attachmentDisposition(name)).toMatch(/^[\x20-\x7e]+$/);
    }
  });
});
