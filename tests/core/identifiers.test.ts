import { describe, expect, it } from 'vitest';
import { CoreError } from '../../src/core/errors.js';
import { isDomainRoomId, isHashEventId, isHashRoomId, isValidServerName, isValidUserId, serverNameOf } from '../../src/core/identifiers.js';

describe('server names', () => {
  it('accepts the spec examples and our 64-hex names', () => {
    for (const name of ['matrix.org', 'matrix.org:8888', '1.2.3.4', '1.2.3.4:1234', '[1234:5678::abcd]', '[1234:5678::abcd]:5678', 'a'.repeat(64)]) {
      expect(isValidServerName(name), name).toBe(true);
    }
  });
  it('refuses the rest', () => {
    for (const name of ['', 'a b', 'a_b', 'host:', 'host:123456', '[zz::1]', 'ex.org/x', '日本.jp']) {
      expect(isValidServerName(name), name).toBe(false);
    }
  });
});

describe('user IDs', () => {
  it('accepts historical localparts but not NUL, and strict mode uses the modern grammar', () => {
    expect(isValidUserId('@alice:example.org')).toBe(true);
    expect(isValidUserId('@Alice Smith!:example.org')).toBe(true);
    expect(isValidUserId('@Alice:example.org', { strict: true })).toBe(false);
    expect(isValidUserId('@a.b_c=d-e/f+g:example.org', { strict: true })).toBe(true);
    expect(isValidUserId('@a\u0000:example.org')).toBe(false);
    expect(isValidUserId('alice:example.org')).toBe(false);
    expect(isValidUserId('@alice')).toBe(false);
    expect(isValidUserId(`@${'a'.repeat(243)}:example.org`)).toBe(false);
    expect(isValidUserId(`@${'a'.repeat(242)}:example.org`)).toBe(true); // exactly 255 bytes
    expect(isValidUserId(42)).toBe(false);
  });

  it('serverNameOf takes everything after the first colon', () => {
    expect(serverNameOf('@alice:example.org')).toBe('example.org');
    expect(serverNameOf('@alice:[::1]:8448')).toBe('[::1]:8448');
    expect(serverNameOf('!room:example.org')).toBe('example.org');
    expect(() => serverNameOf('@alice')).toThrow(CoreError);
    expect(() => serverNameOf('@alice:')).toThrow(CoreError);
  });
});

describe('hash IDs', () => {
  it('recognise "$"/"!" and 43 URL-safe base64 characters', () => {
    const hash = 'FaONtY66QqQFHj_PXzf1HniiepBOt0SgcCvY-v5WedI';
    expect(isHashEventId('$' + hash)).toBe(true);
    expect(isHashRoomId('!' + hash)).toBe(true);
    expect(isHashEventId('!' + hash)).toBe(false);
    expect(isHashEventId('$' + hash.slice(1))).toBe(false);
    expect(isHashEventId('$' + hash.replace('_', '/'))).toBe(false);
    expect(isDomainRoomId('!abc:example.org')).toBe(true);
    expect(isDomainRoomId('!' + hash)).toBe(false);
  });
});
