/**
 * Property: no change to a signed event goes unnoticed. Any single mutation
 * outside `unsigned` and `signatures` breaks the content hash; a mutation that
 * survives redaction also breaks the signature and changes the event ID (and
 * the two always go together).
 */
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { decodeBase64 } from '../../../src/core/base64.js';
import { canonicalJson } from '../../../src/core/canonical-json.js';
import { checkContentHash } from '../../../src/core/events/hashing.js';
import { eventIdOf } from '../../../src/core/events/ids.js';
import { redactEvent } from '../../../src/core/events/redaction.js';
import { signEvent, verifyEventSignature } from '../../../src/core/events/signing.js';
import { createSigner } from '../../../src/core/signing.js';
import derived from '../fixtures/derived-events.json';
import redactions from '../fixtures/redaction.json';

type Json = Record<string, unknown>;
const seed = decodeBase64(derived.seed);
let publicKey: Uint8Array;
const signed: { event: Json; version: string }[] = [];

beforeAll(async () => {
  const signer = await createSigner(seed, 'domain', 'ed25519:1');
  publicKey = signer.publicKey;
  // Every redaction fixture event (all the special content rules), signed under each version.
  for (const { event } of redactions.cases) {
    for (const version of ['10', '11', '12']) {
      // Events of these versions travel without event_id (it is their hash).
      const { signatures: _s, hashes: _h, event_id: _e, ...rest } = event;
      signed.push({ event: (await signEvent(rest, signer, version)) as Json, version });
    }
  }
});

const jsonValue = fc.jsonValue({ maxDepth: 2 }).filter((v) => {
  try {
    canonicalJson(v);
    return true;
  } catch {
    return false;
  }
});
const newKey = fc.oneof(fc.constantFrom('membership', 'redacts', 'invite', 'origin', 'state_key', 'prev_state', 'creator', 'allow', 'x'), fc.string());

type Mutation = { where: 'top' | 'content'; op: 'set' | 'delete'; pick: number; key: string; value: unknown };
const mutation = fc.record({
  where: fc.constantFrom('top', 'content') as fc.Arbitrary<'top' | 'content'>,
  op: fc.constantFrom('set', 'delete') as fc.Arbitrary<'set' | 'delete'>,
  pick: fc.nat(),
  key: newKey,
  value: jsonValue,
});

/** Applies the mutation; undefined when it would be a no-op or touch unsigned/signatures. */
function apply(event: Json, m: Mutation): { mutated: Json; key: string } | undefined {
  const copy = structuredClone(event);
  const target = m.where === 'top' ? copy : (copy.content as Json);
  if (target === undefined) return undefined; // the fixture event without content
  const existing = Object.keys(target).filter((k) => m.where === 'content' || (k !== 'unsigned' && k !== 'signatures'));
  if (m.op === 'delete') {
    if (existing.length === 0) return undefined;
    const key = existing[m.pick % existing.length];
    delete target[key];
    return { mutated: copy, key };
  }
  const key = m.pick % 3 === 0 || existing.length === 0 ? m.key : existing[m.pick % existing.length];
  if (m.where === 'top' && (key === 'unsigned' || key === 'signatures')) return undefined;
  if (Object.hasOwn(target, key) && canonicalJson(target[key]) === canonicalJson(m.value)) return undefined;
  Object.defineProperty(target, key, { value: m.value, enumerable: true, writable: true, configurable: true });
  return { mutated: copy, key };
}

/** A mutation may leave no valid event (say, a non-string `type`): that counts as a change. */
function orMalformed(fn: () => string): string {
  try {
    return fn();
  } catch (err) {
    expect(err).toMatchObject({ code: 'MALFORMED_EVENT' });
    return '<malformed>';
  }
}

describe('tampering with a signed event', () => {
  it('the fixture events are intact to start with', async () => {
    for (const { event, version } of signed) {
      expect(checkContentHash(event)).toBe(true);
      expect(await verifyEventSignature(event, version, 'domain', 'ed25519:1', publicKey)).toBe(true);
    }
  });

  it('any single change is caught', async () => {
    await fc.assert(
      fc.asyncProperty(fc.nat(), mutation, async (which, m) => {
        const { event, version } = signed[which % signed.length];
        const applied = apply(event, m);
        fc.pre(applied !== undefined);
        const { mutated, key } = applied!;
        expect(checkContentHash(mutated)).toBe(false);

        const redactedChanged =
          orMalformed(() => canonicalJson(redactEvent(mutated, version))) !== canonicalJson(redactEvent(event, version));
        const verified = await verifyEventSignature(mutated, version, 'domain', 'ed25519:1', publicKey);
        expect(verified).toBe(!redactedChanged);
        // The ID changes exactly when the signed form does, except for an added
        // event_id, which is signed if present but never part of the ID.
        const idChanged = orMalformed(() => eventIdOf(mutated, version)) !== eventIdOf(event, version);
        expect(idChanged).toBe(redactedChanged && !(m.where === 'top' && key === 'event_id'));
      }),
      { numRuns: 300 },
    );
  });

  it('changes to unsigned are allowed', async () => {
    const { event, version } = signed[0];
    const mutated = { ...event, unsigned: { age: 12345, whatever: [1, 2] } };
    expect(checkContentHash(mutated)).toBe(true);
    expect(await verifyEventSignature(mutated, version, 'domain', 'ed25519:1', publicKey)).toBe(true);
    expect(eventIdOf(mutated, version)).toBe(eventIdOf(event, version));
  });
});
