// VerificationState between two users on two real homeservers replicating on the simulated network, each
// with a matrix-js-sdk client running the Rust crypto: Alice asks to verify Bob's device from their direct
// chat, Bob's state shows the incoming request, he accepts, both see the same seven emoji, both confirm,
// and each side's crypto store then says the other's device is verified. Saying the emoji differ cancels
// on both sides with the reason, and leaves both devices unverified; so does declining.
import { describe, expect, it } from 'vitest';
import type { MatrixClient } from 'matrix-js-sdk';
import { VerificationState, cancelReason, directPartner, DirectPartnerState, type Verification } from '../../../src/ui/state/verification.svelte.js';
import { RoomsState } from '../../../src/ui/state/rooms.svelte.js';
import { RoomTrustState } from '../../../src/ui/state/room-trust.svelte.js';
import type { RealSim } from '../../p2p/simulation/real-harness.js';
import { simPerTest } from './support.js';
import { memberJoined, startCryptoClient, waitFor } from '../../support/e2ee.js';

const ENCRYPTION = { type: 'm.room.encryption', state_key: '', content: { algorithm: 'm.megolm.v1.aes-sha2' } };

const world = simPerTest();
const disposers = world.disposers;

interface Side {
  client: MatrixClient;
  verification: VerificationState;
}

/** Alice and Bob, each on their own server, in a direct chat, each with a VerificationState. */
async function twoUsersInADirectChat(seed: number): Promise<{ alice: Side; bob: Side }> {
  const sim = await world.start({ seed, servers: 2, network: { minDelayMs: 1, maxDelayMs: 5 } });
  const [a, b] = sim.peers as [RealSim['peers'][0], RealSim['peers'][0]];
  const sides: Side[] = [];
  for (const [peer, localpart, name] of [[a, 'alice', 'Alice'], [b, 'bob', 'Bob']] as const) {
    const client = await startCryptoClient(peer!.server, localpart);
    disposers.push(() => client.stopClient());
    await client.setDisplayName(name);
    const verification = VerificationState.of(client);
    if (!verification) throw new Error('a client with Rust crypto has a CryptoApi');
    disposers.push(() => verification.dispose());
    sides.push({ client, verification });
  }
  const [alice, bob] = sides as [Side, Side];
  const { room_id: roomId } = await alice.client.createRoom({ is_direct: true, invite: [bob.client.getUserId()!], initial_state: [ENCRYPTION] });
  await waitFor('Bob to see the invite', () => (bob.client.getRoom(roomId)?.getMyMembership() === 'invite' ? true : undefined));
  expect(directPartner(bob.client, roomId)).toBe(alice.client.getUserId());
  // Bob accepts as the room list does, which marks the chat direct on his side too.
  const bobsRooms = new RoomsState(bob.client);
  disposers.push(() => bobsRooms.dispose());
  await bobsRooms.accept(roomId);
  await memberJoined(alice.client, roomId, bob.client.getUserId()!);
  await memberJoined(bob.client, roomId, alice.client.getUserId()!);
  // Alice's side marked as RoomsState.startDirect does (it makes the room without encryption); her header's
  // partner follows the account data and Bob's display name.
  const alicesPartner = new DirectPartnerState(alice.client, roomId);
  disposers.push(() => alicesPartner.dispose());
  expect(alicesPartner.userId).toBeUndefined();
  await alice.client.setAccountData('m.direct' as never, { [bob.client.getUserId()!]: [roomId] } as never);
  await waitFor('Alice’s header to name Bob', () => (alicesPartner.userId === bob.client.getUserId() && alicesPartner.name === 'Bob' ? true : undefined));
  await waitFor('Bob’s m.direct to name Alice', () => (directPartner(bob.client, roomId) === alice.client.getUserId() ? true : undefined));
  return { alice, bob };
}

/** The direct chat (the only room) of a side. */
function roomIdOf(side: Side): string {
  return side.client.getRooms()[0]!.roomId;
}

/** Alice asks to verify Bob; Bob's state lists the request; returns both sides' Verification. */
async function aliceAsksBob(alice: Side, bob: Side): Promise<{ mine: Verification; theirs: Verification }> {
  const bobId = bob.client.getUserId()!;
  // Bob's device list reaches Alice's crypto once she tracks the members of their encrypted room.
  await waitFor('Alice to know Bob’s device', async () => ((await alice.verification.devicesOf(bobId)).length > 0 ? true : undefined));
  expect(await alice.verification.devicesOf(bobId)).toEqual([bob.client.getDeviceId()]);
  // "Verify" opens the dialog for Bob, whose only device is asked at once.
  await alice.verification.open(bobId);
  expect(alice.verification.picking).toBeUndefined();
  const mine = alice.verification.current!;
  expect(mine.incoming).toBe(false);
  expect(mine.step).toBe('requested');
  const theirs = await waitFor('Bob to receive the request', () => bob.verification.incoming[0]);
  expect(theirs.incoming).toBe(true);
  expect(theirs.step).toBe('requested');
  expect(theirs.otherUserId).toBe(alice.client.getUserId());
  expect(theirs.otherDeviceId).toBe(alice.client.getDeviceId());
  expect(theirs.transactionId).toBe(mine.transactionId);
  return { mine, theirs };
}

async function deviceVerified(of: Side, other: Side): Promise<boolean> {
  const status = await of.client.getCrypto()!.getDeviceVerificationStatus(other.client.getUserId()!, other.client.getDeviceId()!);
  return status?.isVerified() ?? false;
}

describe('SAS verification between two users on two servers', () => {
  it('both sides see the same emoji, both confirm, and each then trusts the other’s device', async () => {
    const { alice, bob } = await twoUsersInADirectChat(31);
    expect(await deviceVerified(alice, bob)).toBe(false);
    expect(await deviceVerified(bob, alice)).toBe(false);
    // The room's unverified-devices note names Bob until the verification is done.
    const trust = new RoomTrustState(alice.client, roomIdOf(alice));
    disposers.push(() => trust.dispose());
    await waitFor('the note to name Bob', () => (trust.unverified.some((m) => m.userId === bob.client.getUserId()) ? true : undefined));
    const { mine, theirs } = await aliceAsksBob(alice, bob);

    await bob.verification.accept(theirs);
    expect(bob.verification.incoming).toEqual([]);
    expect(bob.verification.current).toBe(theirs);
    for (const v of [mine, theirs]) await waitFor(`${v.otherName}'s side to show the emoji`, () => (v.step === 'showing-emoji' ? true : undefined));
    expect(mine.otherDeviceId).toBe(bob.client.getDeviceId());
    expect(mine.emoji).toHaveLength(7);
    expect(theirs.emoji).toEqual(mine.emoji);
    for (const { emoji, name } of mine.emoji) {
      expect(emoji.length).toBeGreaterThan(0);
      expect(name).toMatch(/^[A-Z][a-z]/);
    }

    await mine.confirm();
    // Alice has sent her MAC; she waits for Bob's.
    expect(mine.step).toBe('waiting');
    await theirs.confirm();
    for (const v of [mine, theirs]) await waitFor(`the verification with ${v.otherName} to finish`, () => (v.step === 'verified' ? true : undefined));
    expect([mine.error, theirs.error]).toEqual(['', '']);

    expect(await deviceVerified(alice, bob)).toBe(true);
    expect(await deviceVerified(bob, alice)).toBe(true);
    expect(await alice.verification.isVerified(bob.client.getUserId()!)).toBe(true);
    await waitFor('Alice’s list of verified users to name Bob', () => (alice.verification.verifiedUsers.has(bob.client.getUserId()!) ? true : undefined));
    await waitFor('Bob’s list of verified users to name Alice', () => (bob.verification.verifiedUsers.has(alice.client.getUserId()!) ? true : undefined));
    await waitFor('the note to leave Bob out', () => (trust.unverified.length === 0 ? true : undefined));
  }, 120_000);

  it('saying the emoji differ cancels on both sides, and neither device is trusted', async () => {
    const { alice, bob } = await twoUsersInADirectChat(32);
    const { mine, theirs } = await aliceAsksBob(alice, bob);
    await bob.verification.accept(theirs);
    for (const v of [mine, theirs]) await waitFor(`${v.otherName}'s side to show the emoji`, () => (v.step === 'showing-emoji' ? true : undefined));

    theirs.mismatch();
    for (const v of [mine, theirs]) await waitFor(`${v.otherName}'s side to be cancelled`, () => (v.step === 'cancelled' ? true : undefined));
    expect(theirs.reason).toBe('You said the emoji did not match.');
    expect(mine.reason).toBe('Bob said the emoji did not match.');
    // A confirm after the cancel changes nothing.
    await expect(mine.confirm()).rejects.toThrow();
    expect(await deviceVerified(alice, bob)).toBe(false);
    expect(await deviceVerified(bob, alice)).toBe(false);
    expect(alice.verification.verifiedUsers.size).toBe(0);

    // Closing the dialog of a finished verification sends nothing more.
    await alice.verification.close();
    expect(alice.verification.current).toBeUndefined();
  }, 120_000);

  it('declining an incoming request cancels it on the asking side', async () => {
    const { alice, bob } = await twoUsersInADirectChat(33);
    const { mine, theirs } = await aliceAsksBob(alice, bob);
    await bob.verification.decline(theirs);
    expect(bob.verification.incoming).toEqual([]);
    await waitFor('Alice’s request to be cancelled', () => (mine.step === 'cancelled' ? true : undefined));
    expect(mine.reason).toBe('Bob declined or cancelled.');
    expect(theirs.step).toBe('cancelled');
    expect(theirs.reason).toBe('You cancelled.');
    expect(await deviceVerified(alice, bob)).toBe(false);
  }, 120_000);
});

describe('without an encrypted room in common', () => {
  it('says why a user cannot be verified', async () => {
    const sim = await world.start({ seed: 34, servers: 2, network: { minDelayMs: 1, maxDelayMs: 5 } });
    const [a, b] = sim.peers;
    const alice = await startCryptoClient(a!.server, 'alice');
    const bob = await startCryptoClient(b!.server, 'bob');
    disposers.push(() => alice.stopClient(), () => bob.stopClient());
    const verification = VerificationState.of(alice)!;
    disposers.push(() => verification.dispose());
    const { room_id: roomId } = await alice.createRoom({ invite: [bob.getUserId()!] });
    await waitFor('Bob to see the invite', () => (bob.getRoom(roomId)?.getMyMembership() === 'invite' ? true : undefined));
    await bob.joinRoom(roomId);
    await memberJoined(alice, roomId, bob.getUserId()!);
    expect(await verification.devicesOf(bob.getUserId()!)).toEqual([]);
    await expect(verification.request(bob.getUserId()!)).rejects.toThrow(/needs an encrypted room you share/);
    expect(verification.current).toBeUndefined();
    // The dialog says so too, and offers no device.
    await verification.open(bob.getUserId()!);
    expect(verification.picking).toMatchObject({ userId: bob.getUserId(), devices: [], error: expect.stringMatching(/needs an encrypted room you share/) });
    await expect(verification.pick('SOMEDEVICE')).rejects.toThrow(/not a device to pick/);
    await verification.close();
    expect(verification.picking).toBeUndefined();
  }, 60_000);
});

describe('cancel reasons', () => {
  it('names who cancelled and why', () => {
    expect(cancelReason('m.user', false, 'Bob')).toBe('Bob declined or cancelled.');
    expect(cancelReason('m.timeout', false, 'Bob')).toBe('The request timed out.');
    expect(cancelReason('m.key_mismatch', false, 'Bob')).toMatch(/do not trust/);
    expect(cancelReason(null, true, 'Bob')).toBe('Cancelled.');
  });
});
