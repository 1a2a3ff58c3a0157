/**
 * One transaction as the homeserver sees it: every typed store, sharing one
 * engine transaction and one list of changes. Read transactions get the same
 * object typed as ReadTxn; its writes would fail with READ_ONLY anyway.
 */
import type { EngineTxn } from './engine.js';
import { AccessTokens, AccountData, Devices, Filters, Users } from './stores/accounts.js';
import { checkedWrites } from './storable.js';
import { TxnContext } from './stores/context.js';
import { CrossSigningKeys, DeviceKeys, DeviceLists, FallbackKeys, OneTimeKeys, ToDevice } from './stores/e2ee.js';
import { Dag, Events, Timeline } from './stores/events.js';
import { Aliases, Directory, Memberships, Receipts, Rooms } from './stores/rooms.js';
import { Media, Meta, Outbound, Stream, TransactionIds } from './stores/server.js';
import { CurrentState, EventState, StateGroups } from './stores/state.js';
import type { WriteTxn } from './types.js';

export class Txn implements WriteTxn {
  readonly events: Events;
  readonly timeline: Timeline;
  readonly dag: Dag;
  readonly stateGroups: StateGroups;
  readonly eventState: EventState;
  readonly currentState: CurrentState;
  readonly rooms: Rooms;
  readonly directory: Directory;
  readonly memberships: Memberships;
  readonly aliases: Aliases;
  readonly users: Users;
  readonly devices: Devices;
  readonly accessTokens: AccessTokens;
  readonly filters: Filters;
  readonly accountData: AccountData;
  readonly receipts: Receipts;
  readonly deviceKeys: DeviceKeys;
  readonly crossSigningKeys: CrossSigningKeys;
  readonly oneTimeKeys: OneTimeKeys;
  readonly fallbackKeys: FallbackKeys;
  readonly toDevice: ToDevice;
  readonly deviceLists: DeviceLists;
  readonly media: Media;
  readonly transactionIds: TransactionIds;
  readonly outbound: Outbound;
  readonly meta: Meta;
  readonly stream: Stream;

  constructor(readonly context: TxnContext) {
    this.events = new Events(context);
    this.timeline = new Timeline(context);
    this.dag = new Dag(context);
    this.stateGroups = new StateGroups(context);
    this.eventState = new EventState(context);
    this.currentState = new CurrentState(context);
    this.rooms = new Rooms(context);
    this.directory = new Directory(context);
    this.memberships = new Memberships(context);
    this.aliases = new Aliases(context);
    this.users = new Users(context);
    this.devices = new Devices(context);
    this.accessTokens = new AccessTokens(context);
    this.filters = new Filters(context);
    this.accountData = new AccountData(context);
    this.receipts = new Receipts(context);
    this.deviceKeys = new DeviceKeys(context);
    this.crossSigningKeys = new CrossSigningKeys(context);
    this.oneTimeKeys = new OneTimeKeys(context);
    this.fallbackKeys = new FallbackKeys(context);
    this.toDevice = new ToDevice(context);
    this.deviceLists = new DeviceLists(context);
    this.media = new Media(context);
    this.transactionIds = new TransactionIds(context);
    this.outbound = new Outbound(context);
    this.meta = new Meta(context);
    this.stream = new Stream(context);
  }

  /** The stores over one engine transaction, every row they write checked first (storable.ts). */
  static over(t: EngineTxn): Txn {
    return new Txn(new TxnContext(checkedWrites(t)));
  }
}
