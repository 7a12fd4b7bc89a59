import { Webhook } from 'standardwebhooks';
import { describe, expect, it } from 'vitest';
import { decodeWebhookSecret, signingKeys, signWebhook } from './webhook-signature.js';

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

describe('signingKeys', () => {
  const secretOf = (text: string) => `whsec_${Buffer.from(text).toString('base64')}`;
  const fallback = secretOf('the-fallback-secret-of-the-tests');
  const alpha = secretOf('the-secret-of-tenant-alpha-32-by');

  it("uses the tenant's own secret, else MOA_WEBHOOK_SECRET", () => {
    const keyOf = signingKeys({ alpha: { webhookSecret: alpha }, beta: {} }, fallback);
    expect(keyOf('alpha')).toEqual(decodeWebhookSecret(alpha));
    expect(keyOf('beta')).toEqual(decodeWebhookSecret(fallback));
    expect(keyOf('default')).toEqual(decodeWebhookSecret(fallback));
    expect(keyOf('unknown')).toEqual(decodeWebhookSecret(fallback));
  });

  it('has no key for a tenant without a secret when MOA_WEBHOOK_SECRET is unset', () => {
    const keyOf = signingKeys({ alpha: { webhookSecret: alpha }, beta: {} }, undefined);
    expect(keyOf('alpha')).toEqual(decodeWebhookSecret(alpha));
    expect(keyOf('beta')).toBeUndefined();
    expect(keyOf('default')).toBeUndefined();
    expect(signingKeys(undefined, undefined)('default')).toBeUndefined();
  });

  it("never reads an inherited property as a tenant's settings", () => {
    const inherited = Object.create({ evil: { webhookSecret: alpha } }) as Record<
      string,
      { webhookSecret?: string }
    >;
    const keyOf = signingKeys(inherited, undefined);
    for (const tenant of ['evil', '__proto__', 'constructor', 'toString', 'hasOwnProperty']) {
      expect(keyOf(tenant)).toBeUndefined();
    }
    // A tenant literally named __proto__ in the config file (an own key, as JSON.parse makes it) is just a name.
    const parsed = JSON.parse(`{"__proto__": {"webhookSecret": "${alpha}"}}`) as Record<
      string,
      { webhookSecret?: string }
    >;
    const parsedKeyOf = signingKeys(parsed, fallback);
    expect(parsedKeyOf('__proto__')).toEqual(decodeWebhookSecret(alpha));
    expect(parsedKeyOf('constructor')).toEqual(decodeWebhookSecret(fallback));
  });

  it('refuses a malformed secret at start, naming where it came from', () => {
    expect(() => signingKeys({ alpha: { webhookSecret: 'whsec_' } }, fallback)).toThrow(
      /tenants\.alpha\.webhookSecret: .*empty/,
    );
    expect(() => signingKeys({}, 'plain')).toThrow(/MOA_WEBHOOK_SECRET: .*whsec_/);
  });
});
