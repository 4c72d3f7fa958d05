import { RegistryError } from '../../demo-registry/errors';
import { checkName, checkTag, digestOf, parseDigest } from '../../demo-registry/reference';

const codeOf = (fn: () => unknown): string | undefined => {
  try {
    fn();
    return undefined;
  } catch (err) {
    return (err as RegistryError).code;
  }
};

describe('repository names', () => {
  it.each(['a', 'library/ubuntu', 'a/b/c/d', 'a.b', 'a_b', 'a__b', 'a-b', 'a---b', 'x9/y-8.z_7'])('accepts %s', (name) => {
    expect(checkName(name)).toBe(name);
  });

  it.each(['', 'A', 'a..b', 'a___b', 'a_', '_a', 'a/', '/a', 'a//b', 'a b', 'a/-b', 'a:b'])('refuses %j with NAME_INVALID', (name) => {
    expect(codeOf(() => checkName(name))).toBe('NAME_INVALID');
  });

  it('allows 255 characters and no more', () => {
    const name = (n: number) => `${'a'.repeat(100)}/${'b'.repeat(100)}/${'c'.repeat(n - 202)}`;
    expect(checkName(name(255))).toHaveLength(255);
    expect(() => checkName(name(256))).toThrow('256 characters, at most 255 allowed');
  });
});

describe('tags', () => {
  it('accepts up to 128 characters starting with a word character', () => {
    expect(checkTag('v1.0_rc-1')).toBe('v1.0_rc-1');
    expect(checkTag('_x')).toBe('_x');
    expect(checkTag('a'.repeat(128))).toHaveLength(128);
  });

  it.each(['', '.x', '-x', 'a'.repeat(129), 'a/b', 'a:b'])('refuses %j with TAG_INVALID', (tag) => {
    expect(codeOf(() => checkTag(tag))).toBe('TAG_INVALID');
  });
});

describe('digests', () => {
  it('accepts sha256 and sha512 of the right length', () => {
    expect(parseDigest('sha256:' + 'a'.repeat(64))).toEqual({ algorithm: 'sha256', hex: 'a'.repeat(64) });
    expect(parseDigest('sha512:' + '0'.repeat(128)).algorithm).toBe('sha512');
    expect(digestOf(Buffer.from(''))).toBe('sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
  });

  it.each([
    ['sha256:' + 'a'.repeat(63), 'sha256 needs 64 lowercase hex characters'],
    ['sha256:' + 'g'.repeat(64), 'sha256 needs 64'],
    ['sha512:' + 'a'.repeat(64), 'sha512 needs 128'],
    ['sha1:' + 'a'.repeat(40), 'algorithm must be sha256 or sha512'],
    ['abc', 'algorithm must be sha256 or sha512'],
  ])('refuses %s with DIGEST_INVALID', (digest, message) => {
    expect(codeOf(() => parseDigest(digest))).toBe('DIGEST_INVALID');
    expect(() => parseDigest(digest)).toThrow(message);
  });
});
