/**
 * matrix-js-sdk event names as the SDK's own enum types, written as strings so the UI imports the SDK's
 * types only (the SDK itself is loaded by src/app, lazily). A renamed event fails the typecheck here.
 */
import type { MatrixClient, ClientEvent, MatrixEventEvent, RoomEvent, RoomMemberEvent, RoomStateEvent, UserEvent } from 'matrix-js-sdk';

export const SYNC = 'sync' as ClientEvent.Sync;
export const ROOM_ADDED = 'Room' as ClientEvent.Room;
export const ACCOUNT_DATA = 'accountData' as ClientEvent.AccountData;
export const ROOM_DELETED = 'deleteRoom' as ClientEvent.DeleteRoom;
export const ROOM_TIMELINE = 'Room.timeline' as RoomEvent.Timeline;
export const ROOM_NAME = 'Room.name' as RoomEvent.Name;
export const ROOM_MY_MEMBERSHIP = 'Room.myMembership' as RoomEvent.MyMembership;
export const ROOM_RECEIPT = 'Room.receipt' as RoomEvent.Receipt;
export const ROOM_LOCAL_ECHO = 'Room.localEchoUpdated' as RoomEvent.LocalEchoUpdated;
export const ROOM_TIMELINE_RESET = 'Room.timelineReset' as RoomEvent.TimelineReset;
export const MEMBER_NAME = 'RoomMember.name' as RoomMemberEvent.Name;
/** After a batch of state events has been applied (members' power levels included). */
export const ROOM_STATE_UPDATE = 'RoomState.update' as RoomStateEvent.Update;
export const ROOM_REDACTION = 'Room.redaction' as RoomEvent.Redaction;
export const MEMBER_TYPING = 'RoomMember.typing' as RoomMemberEvent.Typing;
/** Every event a sync brings, ephemeral ones (m.typing) included. */
export const CLIENT_EVENT = 'event' as ClientEvent.Event;
/** An encrypted event was decrypted, or failed to be (the client re-emits it for every event it maps). */
export const EVENT_DECRYPTED = 'Event.decrypted' as MatrixEventEvent.Decrypted;
// The SDK's main entry does not export CryptoEvent's type: these two are checked by the tests that use them.
/** The crypto learnt new devices or keys of some users (CryptoEvent.DevicesUpdated). */
export const DEVICES_UPDATED = 'crypto.devicesUpdated' as never;
/** A user's cross-signing trust changed: a verification, a new identity (CryptoEvent.UserTrustStatusChanged). */
export const USER_TRUST_CHANGED = 'userTrustStatusChanged' as never;
/** A member joined, left, was invited… */
export const MEMBER_MEMBERSHIP = 'RoomMember.membership' as RoomMemberEvent.Membership;
/** The user's avatar_url changed (set by this client, or seen in presence). */
export const USER_AVATAR = 'User.avatarUrl' as UserEvent.AvatarUrl;

/**
 * Runs `run` once the client's first sync is in (at once when it is): requests a screen does not wait for
 * then do not compete with the ones the room list waits for.
 */
export function afterFirstSync(client: MatrixClient, run: () => void): void {
  if (client.isInitialSyncComplete()) run();
  else client.once(SYNC, run);
}
