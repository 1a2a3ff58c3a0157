/**
 * Interactive verification with emoji (SAS, m.sas.v1) of another user's device, over matrix-js-sdk's
 * CryptoApi: requests this user makes ("Verify" on a member) and requests others make of this device
 * (CryptoEvent.VerificationRequestReceived), each followed through the phases the user sees: requested,
 * ready, showing emoji, waiting for the other side, verified, or cancelled with a reason. It exists only
 * where the client has crypto (`VerificationState.of(client)`), so the app gains it when Rust crypto boots.
 *
 * Requests go to one device by to-device messages (requestDeviceVerification), not into a DM: a DM
 * request needs the other user's cross-signing identity, a device request needs only its keys, and each
 * profile is one device. The side that asked starts SAS once the other accepts; the other side accepts the
 * start by calling verify() on the verifier that appears, so both reach ShowSas with the same seven emoji.
 * Confirming sends our MAC; the request is done only when the other side's MAC matches too.
 */
import type { MatrixClient } from 'matrix-js-sdk';
import { ACCOUNT_DATA, MEMBER_NAME, ROOM_STATE_UPDATE } from './events.js';
import type {
  CryptoApi,
  CryptoEvent,
  ShowSasCallbacks,
  VerificationPhase,
  VerificationRequest,
  VerificationRequestEvent,
  Verifier,
  VerifierEvent,
} from 'matrix-js-sdk/lib/crypto-api/index.js';

// The SDK's enum values, written out so the UI imports its types only (a renamed one fails the typecheck).
const VERIFICATION_REQUEST_RECEIVED = 'crypto.verificationRequestReceived' as CryptoEvent.VerificationRequestReceived;
const REQUEST_CHANGE = 'change' as VerificationRequestEvent.Change;
const SHOW_SAS = 'show_sas' as VerifierEvent.ShowSas;
const PHASE = {
  Requested: 2 as VerificationPhase.Requested,
  Ready: 3 as VerificationPhase.Ready,
  Started: 4 as VerificationPhase.Started,
  Cancelled: 5 as VerificationPhase.Cancelled,
  Done: 6 as VerificationPhase.Done,
};
export const SAS_METHOD = 'm.sas.v1';

/** What the user is shown of one verification. */
export type VerificationStep = 'requested' | 'ready' | 'showing-emoji' | 'waiting' | 'verified' | 'cancelled';

export interface SasEmoji {
  emoji: string;
  name: string;
}

/** Why a verification ended, in words, from the cancel code and who sent it. */
export function cancelReason(code: string | null, byMe: boolean, otherName: string): string {
  switch (code) {
    case 'm.mismatched_sas':
      return byMe ? 'You said the emoji did not match.' : `${otherName} said the emoji did not match.`;
    case 'm.user':
      return byMe ? 'You cancelled.' : `${otherName} declined or cancelled.`;
    case 'm.timeout':
      return 'The request timed out.';
    case 'm.accepted':
      return 'Accepted on another device.';
    case 'm.unknown_method':
    case 'm.unexpected_message':
    case 'm.unknown_transaction':
      return `The other side did not follow the protocol (${code}).`;
    case 'm.key_mismatch':
    case 'm.user_mismatch':
    case 'm.invalid_message':
      return `The keys did not check out (${code}): do not trust this device.`;
    default:
      return code ? `Cancelled (${code}).` : 'Cancelled.';
  }
}

function messageOf(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

function noDeviceMessage(name: string): string {
  return `No device of ${name} is known yet: verification needs an encrypted room you share.`;
}

/**
 * The other user of a direct chat: whom m.direct names for the room (RoomsState writes it when starting a
 * direct chat and when accepting an invite to one), or, while still invited, who invited us to it.
 */
export function directPartner(client: MatrixClient, roomId: string): string | undefined {
  const direct = client.getAccountData('m.direct' as never)?.getContent() as Record<string, unknown> | undefined;
  for (const [userId, rooms] of Object.entries(direct ?? {})) {
    if (Array.isArray(rooms) && rooms.includes(roomId)) return userId;
  }
  return client.getRoom(roomId)?.getDMInviter();
}

/** A direct chat's partner and their name, kept current as m.direct and the room's members change. */
export class DirectPartnerState {
  userId = $state<string | undefined>(undefined);
  name = $state('');
  readonly #client: MatrixClient;
  readonly #roomId: string;
  readonly #refresh = () => {
    const userId = directPartner(this.#client, this.#roomId);
    this.userId = userId;
    this.name = userId ? (this.#client.getRoom(this.#roomId)?.getMember(userId)?.name ?? userId) : '';
  };

  constructor(client: MatrixClient, roomId: string) {
    this.#client = client;
    this.#roomId = roomId;
    client.on(ACCOUNT_DATA, this.#refresh);
    client.on(MEMBER_NAME, this.#refresh);
    client.on(ROOM_STATE_UPDATE, this.#refresh);
    this.#refresh();
  }

  dispose(): void {
    this.#client.off(ACCOUNT_DATA, this.#refresh);
    this.#client.off(MEMBER_NAME, this.#refresh);
    this.#client.off(ROOM_STATE_UPDATE, this.#refresh);
  }
}

/** One verification request, incoming or outgoing, as the dialogs show it. */
export class Verification {
  step = $state<VerificationStep>('requested');
  emoji = $state.raw<SasEmoji[]>([]);
  /** Set once the step is 'cancelled'. */
  reason = $state('');
  /** The last failure of an action the user took (accept, confirm…), for an alert. */
  error = $state('');
  readonly otherUserId: string;
  readonly otherName: string;
  readonly incoming: boolean;

  readonly #request: VerificationRequest;
  #verifier: Verifier | undefined;
  #sas: ShowSasCallbacks | undefined;
  #confirmed = false;
  #starting = false;
  readonly #onChange = () => this.#update();
  readonly #onShowSas = (sas: ShowSasCallbacks) => {
    this.#sas = sas;
    this.emoji = (sas.sas.emoji ?? []).map(([emoji, name]) => ({ emoji, name }));
    this.#update();
  };
  readonly #onEnd: (verification: Verification) => void;

  constructor(request: VerificationRequest, otherName: string, onEnd: (verification: Verification) => void) {
    this.#request = request;
    this.otherUserId = request.otherUserId;
    this.otherName = otherName;
    this.incoming = !request.initiatedByMe;
    this.#onEnd = onEnd;
    request.on(REQUEST_CHANGE, this.#onChange);
    this.#update();
  }

  /** The other device: known from the start for an incoming request, once accepted for an outgoing one. */
  get otherDeviceId(): string | undefined {
    return this.#request.otherDeviceId;
  }

  /** The request's transaction (the same on both sides). */
  get transactionId(): string | undefined {
    return this.#request.transactionId;
  }

  get finished(): boolean {
    return this.step === 'verified' || this.step === 'cancelled';
  }

  /** Accepts an incoming request; the side that asked then starts SAS. */
  async accept(): Promise<void> {
    await this.#act(() => this.#request.accept());
  }

  /** Declines an incoming request (a cancel with m.user, as the spec has it). */
  async decline(): Promise<void> {
    await this.cancel();
  }

  /** The emoji are the same on both screens: sends our MAC and waits for theirs. */
  async confirm(): Promise<void> {
    const sas = this.#sas;
    if (!sas || this.step !== 'showing-emoji') throw new Error('there are no emoji to confirm');
    this.#confirmed = true;
    this.#update();
    await this.#act(() => sas.confirm());
  }

  /** The emoji differ: cancels on both sides with m.mismatched_sas. */
  mismatch(): void {
    if (!this.#sas || this.finished) return;
    this.#sas.mismatch();
  }

  async cancel(): Promise<void> {
    if (this.finished) return;
    await this.#act(() => this.#request.cancel({ code: 'm.user', reason: 'The user cancelled' }));
  }

  dispose(): void {
    this.#request.off(REQUEST_CHANGE, this.#onChange);
    this.#verifier?.off(SHOW_SAS, this.#onShowSas);
  }

  async #act(action: () => Promise<void>): Promise<void> {
    this.error = '';
    try {
      await action();
    } catch (e) {
      // A cancel that raced the action shows as the step's reason; anything else is the action's failure.
      this.#update();
      if (!this.finished) this.error = messageOf(e);
    }
  }

  #update(): void {
    const request = this.#request;
    const before = this.step;
    switch (request.phase) {
      case PHASE.Cancelled:
        this.step = 'cancelled';
        this.reason = cancelReason(request.cancellationCode, request.cancellingUserId === undefined || request.cancellingUserId !== this.otherUserId, this.otherName);
        break;
      case PHASE.Done:
        this.step = 'verified';
        break;
      case PHASE.Ready:
        this.step = 'ready';
        if (!this.incoming) this.#startSas();
        break;
      case PHASE.Started:
        this.#follow(request.verifier);
        this.step = this.#sas ? (this.#confirmed ? 'waiting' : 'showing-emoji') : 'ready';
        break;
      default:
        this.step = 'requested';
    }
    if (!before || before === this.step) return;
    if (this.finished) {
      this.dispose();
      this.#onEnd(this);
    }
  }

  /** Only the side that asked starts SAS, so the two never race to start. */
  #startSas(): void {
    if (this.#starting || this.#verifier) return;
    this.#starting = true;
    this.#request.startVerification(SAS_METHOD).then(
      (verifier) => {
        this.#follow(verifier);
        this.#update();
      },
      (e: unknown) => {
        this.#update();
        if (!this.finished) this.error = messageOf(e);
      },
    );
  }

  /** Listens for the emoji and runs the verifier (for the side that did not start, verify() accepts the start). */
  #follow(verifier: Verifier | undefined): void {
    if (!verifier || this.#verifier) return;
    this.#verifier = verifier;
    verifier.on(SHOW_SAS, this.#onShowSas);
    const shown = verifier.getShowSasCallbacks();
    if (shown) this.#onShowSas(shown);
    // verify() settles when the verification ends: done, or rejected by a cancel or mismatch, which the
    // request's phase reports.
    verifier.verify().then(
      () => this.#update(),
      () => this.#update(),
    );
  }
}

/** The session's verifications: incoming prompts, and the one the "Verify <name>" dialog follows. */
export class VerificationState {
  /** Incoming requests not yet accepted or declined. */
  incoming = $state.raw<Verification[]>([]);
  /** The verification the dialog shows (started here, or an accepted incoming one); kept when it ends so its outcome shows. */
  current = $state<Verification | undefined>(undefined);
  /**
   * The user the dialog was opened for before a request exists: while their devices load, when they have
   * several (the dialog lists them), or when there is none to verify (`error`). Raw state, replaced and never
   * mutated: `open` and `pick` compare it by identity to notice a newer open, which a deep proxy would defeat.
   */
  picking = $state.raw<{ userId: string; name: string; devices: string[]; error: string } | undefined>(undefined);
  /** Users with a device this session verified, or the server told us is verified; refreshed by `refreshTrust`. */
  verifiedUsers = $state.raw<ReadonlySet<string>>(new Set());

  readonly #client: MatrixClient;
  readonly #crypto: CryptoApi;
  readonly #live = new Set<Verification>();
  readonly #onRequest = (request: VerificationRequest) => {
    // Self-verification (another device of ours) is not part of this feature; DM requests neither.
    if (request.isSelfVerification || request.roomId) return;
    if (request.phase !== PHASE.Requested) return;
    const verification = this.#track(request);
    this.incoming = [...this.incoming, verification];
  };

  /** The state for `client`, or undefined when it has no crypto (no verification without keys). */
  static of(client: MatrixClient): VerificationState | undefined {
    const crypto = client.getCrypto();
    return crypto ? new VerificationState(client, crypto) : undefined;
  }

  constructor(client: MatrixClient, crypto: CryptoApi) {
    this.#client = client;
    this.#crypto = crypto;
    client.on(VERIFICATION_REQUEST_RECEIVED as never, this.#onRequest as never);
  }

  /**
   * The devices of `userId` that can be verified. The Rust crypto knows (tracks) the devices of the members
   * of encrypted rooms only, and verifies only devices it knows: someone sharing no encrypted room with us
   * has none here.
   */
  async devicesOf(userId: string): Promise<string[]> {
    const devices = await this.#crypto.getUserDeviceInfo([userId], false);
    return [...(devices.get(userId)?.keys() ?? [])].sort();
  }

  /**
   * Asks `userId` to verify: their only device, or `deviceId` when they have several (the dialog asks which).
   * Becomes `current`.
   */
  async request(userId: string, deviceId?: string): Promise<Verification> {
    let device = deviceId;
    if (!device) {
      const devices = await this.devicesOf(userId);
      if (devices.length === 0) throw new Error(noDeviceMessage(this.#nameOf(userId)));
      if (devices.length > 1) throw new Error(`${this.#nameOf(userId)} has ${devices.length} devices: pick one.`);
      device = devices[0]!;
    }
    const request = await this.#crypto.requestDeviceVerification(userId, device);
    const verification = this.#track(request);
    this.current = verification;
    return verification;
  }

  /** Opens the dialog for `userId`: asks their device at once when they have one, else lists them to pick. */
  async open(userId: string): Promise<void> {
    const picking = { userId, name: this.#nameOf(userId), devices: [] as string[], error: '' };
    this.current = undefined;
    this.picking = picking;
    let devices: string[];
    try {
      devices = await this.devicesOf(userId);
    } catch (e) {
      if (this.picking === picking) this.picking = { ...picking, error: messageOf(e) };
      return;
    }
    if (this.picking !== picking) return;
    this.picking = { ...picking, devices, error: devices.length === 0 ? noDeviceMessage(picking.name) : '' };
    if (devices.length === 1) await this.pick(devices[0]!);
  }

  /** Asks the device the user picked from `picking.devices`. */
  async pick(deviceId: string): Promise<void> {
    const picking = this.picking;
    if (!picking?.devices.includes(deviceId)) throw new Error(`${deviceId} is not a device to pick`);
    try {
      await this.request(picking.userId, deviceId);
      if (this.picking === picking) this.picking = undefined;
    } catch (e) {
      if (this.picking === picking) this.picking = { ...picking, error: messageOf(e) };
    }
  }

  /** Accepts an incoming request and shows it in the dialog. */
  async accept(verification: Verification): Promise<void> {
    this.incoming = this.incoming.filter((v) => v !== verification);
    this.current = verification;
    await verification.accept();
  }

  async decline(verification: Verification): Promise<void> {
    this.incoming = this.incoming.filter((v) => v !== verification);
    await verification.decline();
  }

  /** Closes the dialog; a verification still under way is cancelled. */
  async close(): Promise<void> {
    const verification = this.current;
    this.current = undefined;
    this.picking = undefined;
    if (verification && !verification.finished) await verification.cancel();
  }

  /** Whether the device (or, without one, any device of the user) is verified, as the crypto store says. */
  async isVerified(userId: string, deviceId?: string): Promise<boolean> {
    const devices = deviceId ? [deviceId] : await this.devicesOf(userId);
    for (const device of devices) {
      if ((await this.#crypto.getDeviceVerificationStatus(userId, device))?.isVerified()) return true;
    }
    return false;
  }

  async refreshTrust(userId: string): Promise<void> {
    const verified = await this.isVerified(userId);
    if (verified === this.verifiedUsers.has(userId)) return;
    const next = new Set(this.verifiedUsers);
    if (verified) next.add(userId);
    else next.delete(userId);
    this.verifiedUsers = next;
  }

  dispose(): void {
    this.#client.off(VERIFICATION_REQUEST_RECEIVED as never, this.#onRequest as never);
    for (const verification of this.#live) verification.dispose();
    this.#live.clear();
  }

  #track(request: VerificationRequest): Verification {
    const verification = new Verification(request, this.#nameOf(request.otherUserId), (ended) => {
      this.#live.delete(ended);
      // An incoming request cancelled before it was answered leaves the prompts.
      this.incoming = this.incoming.filter((v) => v !== ended);
      if (ended.step === 'verified') void this.refreshTrust(ended.otherUserId).catch(() => {});
    });
    if (!verification.finished) this.#live.add(verification);
    return verification;
  }

  /** The display name of `userId`: from their profile if the client has it (lazy-loaded members leave it out), else from a room we share. */
  #nameOf(userId: string): string {
    const profileName = this.#client.getUser(userId)?.displayName;
    if (profileName) return profileName;
    for (const room of this.#client.getRooms()) {
      const member = room.getMember(userId);
      if (member?.name) return member.name;
    }
    return userId;
  }
}
