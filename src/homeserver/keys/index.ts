/**
 * Keys and to-device messaging: the server side of end-to-end encryption.
 * The client-server routes are in client-api/e2ee; /sync uses
 * `deviceListChanges` for its device_lists section.
 */
export { deviceListChanges, streamPositionOfToken, usersSharingRooms, type DeviceListDelta } from './device-lists.js';
