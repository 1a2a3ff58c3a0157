/**
 * Keys and to-device messaging: the server side of end-to-end encryption.
 * The client-server routes are in client-api/e2ee; /sync uses
 * `deviceListDelta` for its device_lists section.
 */
export { deviceListChanges, deviceListDelta, streamPositionOfToken, usersSharingRooms, type DeviceListDelta, type DeviceListWindow } from './device-lists.js';
