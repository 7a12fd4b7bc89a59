import { Webhook } from 'standardwebhooks';
import { describe, expect, it } from 'vitest';
import { decodeWebhookSecret, signWebhook } from './webhook-signature.js';

describe('Standard Webhooks signatures', () => {
  const secret = `whsec_${Buffer.from('a-32-byte-secret-for-the-tests!!').toString('base64')}`;

  it('verifies with the independent standardwebhooks implementation', () => {
    const body = JSON.stringify({ id: 'job_x', status: 'completed' });
    const timestamp = Math.floor(Date.now() / 1000);
    const signature = signWebhook(decodeWebhookSecret(secret), 'msg_job_x', timestamp, body);
    expect(signature).toMatch(/^v1,[A-Za-z0-9+/]+=*$/);
    const verified = new Webhook(secret).verify(body, {
      'webhook-id': 'msg_job_x',
      'webhook-timestamp': String(timestamp),
      'webhook-signature': signature,
    });
    expect(verified).toEqual(JSON.parse(body));
  });

  it('a changed body or id fails verification', () => {
    const timestamp = Math.floor(Date.now() / 1000);
    const signature = signWebhook(decodeWebhookSecret(secret), 'msg_1', timestamp, '{"a":1}');
    const webhook = new Webhook(secret);
    const headers = {
      'webhook-id': 'msg_1',
      'webhook-timestamp': String(timestamp),
      'webhook-signature': signature,
    };
    expect(() => webhook.verify('{"a":2}', headers)).toThrow();
    expect(() => webhook.verify('{"a":1}', { ...headers, 'webhook-id': 'msg_2' })).toThrow();
  });

  it('rejects secrets that are not whsec_ base64', () => {
    expect(() => decodeWebhookSecret('plain')).toThrow(/whsec_/);
    expect(() => decodeWebhookSecret('whsec_')).toThrow(/empty/);
  });
});
