import { createHmac, randomBytes } from 'node:crypto';
import {
  secretKey,
  signWebhook,
  verifyWebhook,
  WebhookSecretError,
  WebhookVerificationError,
} from '../../lib/codec/signing';

const KEY = randomBytes(24);
const SECRET = 'whsec_' + KEY.toString('base64');
const NOW = 1_763_800_000;
const BODY = '{"events":[{"id":"a"}]}';

describe('signWebhook', () => {
  test('signs "<id>.<timestamp>.<body>" with HMAC-SHA256 of the decoded whsec_ key', () => {
    const headers = signWebhook([SECRET], 'msg_1', NOW, BODY);
    const expected = createHmac('sha256', KEY).update(`msg_1.${NOW}.${BODY}`).digest('base64');
    expect(headers).toEqual({
      'webhook-id': 'msg_1',
      'webhook-timestamp': String(NOW),
      'webhook-signature': `v1,${expected}`,
    });
  });

  test('matches the published Standard Webhooks test vector', () => {
    // The example from the Standard Webhooks specification.
    const headers = signWebhook(
      ['whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw'],
      'msg_p5jXN8AQM9LWM0D4loKWxJek',
      1614265330,
      '{"test": 2432232314}',
    );
    expect(headers['webhook-signature']).toBe('v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=');
  });

  test('emits one signature per secret, in order, for rotation', () => {
    const other = 'a raw secret';
    const sig = signWebhook([SECRET, other], 'id', NOW, BODY)['webhook-signature'].split(' ');
    expect(sig).toHaveLength(2);
    expect(sig[1]).toBe('v1,' + createHmac('sha256', Buffer.from(other)).update(`id.${NOW}.${BODY}`).digest('base64'));
  });

  test('a Buffer body signs the same as its string', () => {
    expect(signWebhook([SECRET], 'id', NOW, Buffer.from(BODY))).toEqual(signWebhook([SECRET], 'id', NOW, BODY));
  });

  test('rejects no secrets, an empty secret, bad base64 and fractional timestamps', () => {
    expect(() => signWebhook([], 'id', NOW, BODY)).toThrow(WebhookSecretError);
    expect(() => signWebhook([''], 'id', NOW, BODY)).toThrow(/non-empty/);
    expect(() => secretKey('whsec_not base64!')).toThrow(/must be base64/);
    expect(() => signWebhook([SECRET], 'id', 1.5, BODY)).toThrow(/whole unix seconds, got 1.5/);
  });
});

describe('verifyWebhook', () => {
  const signed = (secrets = [SECRET], ts = NOW, body = BODY) => signWebhook(secrets, 'msg_1', ts, body);

  test('accepts a valid signature and returns id and timestamp', () => {
    expect(verifyWebhook([SECRET], signed(), BODY, { nowSec: NOW })).toEqual({ id: 'msg_1', timestampSec: NOW });
  });

  test('accepts when any secret matches any signature (rotation both ways)', () => {
    const newSecret = 'whsec_' + randomBytes(32).toString('base64');
    // Sender signs with old and new; receiver knows only the new one.
    expect(() => verifyWebhook([newSecret], signed([SECRET, newSecret]), BODY, { nowSec: NOW })).not.toThrow();
    // Sender signs only with old; receiver knows new and old.
    expect(() => verifyWebhook([newSecret, SECRET], signed([SECRET]), BODY, { nowSec: NOW })).not.toThrow();
  });

  test('finds headers whatever their case, and skips signatures of other versions', () => {
    const h = signed();
    const headers = {
      'Webhook-Id': h['webhook-id'],
      'WEBHOOK-TIMESTAMP': h['webhook-timestamp'],
      'Webhook-Signature': `v1a,AAAA ${h['webhook-signature']}`,
    };
    expect(() => verifyWebhook([SECRET], headers, BODY, { nowSec: NOW })).not.toThrow();
  });

  test.each(['webhook-id', 'webhook-timestamp', 'webhook-signature'])('names a missing %s header', (name) => {
    const headers: Record<string, string> = { ...signed() };
    delete headers[name];
    expect(() => verifyWebhook([SECRET], headers, BODY, { nowSec: NOW })).toThrow(
      new WebhookVerificationError(`missing ${name} header`),
    );
  });

  test('rejects a changed body, id or timestamp', () => {
    expect(() => verifyWebhook([SECRET], signed(), BODY + ' ', { nowSec: NOW })).toThrow(/no webhook-signature matches/);
    expect(() => verifyWebhook([SECRET], { ...signed(), 'webhook-id': 'msg_2' }, BODY, { nowSec: NOW })).toThrow(
      WebhookVerificationError,
    );
    expect(() =>
      verifyWebhook([SECRET], { ...signed(), 'webhook-timestamp': String(NOW + 1) }, BODY, { nowSec: NOW }),
    ).toThrow(/no webhook-signature matches/);
  });

  test('rejects a signature made with another secret', () => {
    expect(() => verifyWebhook(['whsec_' + randomBytes(24).toString('base64')], signed(), BODY, { nowSec: NOW })).toThrow(
      /1 signature\(s\) checked against 1 secret\(s\)/,
    );
  });

  test('rejects timestamps outside the tolerance, saying which way', () => {
    expect(() => verifyWebhook([SECRET], signed([SECRET], NOW - 301), BODY, { nowSec: NOW })).toThrow(/too old: 301s before now, tolerance 300s/);
    expect(() => verifyWebhook([SECRET], signed([SECRET], NOW + 301), BODY, { nowSec: NOW })).toThrow(/too new/);
    expect(() => verifyWebhook([SECRET], signed([SECRET], NOW - 300), BODY, { nowSec: NOW })).not.toThrow();
    expect(() => verifyWebhook([SECRET], signed([SECRET], NOW - 20), BODY, { nowSec: NOW, toleranceSec: 10 })).toThrow(/tolerance 10s/);
  });

  test('uses the clock when nowSec is not given', () => {
    const now = Math.floor(Date.now() / 1000);
    expect(verifyWebhook([SECRET], signed([SECRET], now), BODY).timestampSec).toBe(now);
    expect(() => verifyWebhook([SECRET], signed([SECRET], now - 3600), BODY)).toThrow(/too old/);
  });

  test('rejects a non-numeric timestamp and a header with no v1 signature', () => {
    expect(() => verifyWebhook([SECRET], { ...signed(), 'webhook-timestamp': '2025-01-01' }, BODY, { nowSec: NOW })).toThrow(
      /webhook-timestamp must be unix seconds, got "2025-01-01"/,
    );
    expect(() => verifyWebhook([SECRET], { ...signed(), 'webhook-signature': 'v2,abc' }, BODY, { nowSec: NOW })).toThrow(
      /has no v1 signature/,
    );
  });

  test('a truncated signature does not match (and does not throw a RangeError)', () => {
    const h = signed();
    const truncated = h['webhook-signature'].slice(0, 20);
    expect(() => verifyWebhook([SECRET], { ...h, 'webhook-signature': truncated }, BODY, { nowSec: NOW })).toThrow(
      WebhookVerificationError,
    );
  });

  test('the error has a fixed name', () => {
    expect(new WebhookVerificationError('x').name).toBe('WebhookVerificationError');
  });
});
