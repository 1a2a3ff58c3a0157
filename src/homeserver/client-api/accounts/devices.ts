/**
 * Device management (spec "Device management"): list, read, rename and delete
 * the requester's devices. Deleting needs user-interactive auth (the password
 * again) and takes the device's tokens and end-to-end keys with it; renaming
 * and deleting record a device list change, since other users' clients show
 * device names and must stop encrypting for deleted devices.
 */
import { invalidParam, badJson, missingParam, notFound } from '../../http/errors.js';
import { clientRoute, type RouteDefinition } from '../../http/router.js';
import { removeDevices } from '../../accounts/devices.js';
import type { DeviceRecord } from '../../../storage/types.js';
import { optionalString } from '../../http/params.js';
import { MAX_DEVICE_NAME_LENGTH, operationOf, reauthenticate, type AccountsDeps } from './common.js';
import { BOUNDS, checkListLength } from '../../limits/bounds.js';
import { recordDeviceListChange } from '../../keys/device-lists.js';

function deviceJson(device: DeviceRecord): Record<string, unknown> {
  const out: Record<string, unknown> = { device_id: device.deviceId };
  if (device.displayName !== undefined) out.display_name = device.displayName;
  if (device.lastSeenIp !== undefined) out.last_seen_ip = device.lastSeenIp;
  if (device.lastSeenTs !== undefined) out.last_seen_ts = device.lastSeenTs;
  return out;
}

export function deviceRoutes(deps: AccountsDeps): RouteDefinition[] {
  const { ctx } = deps.services;

  return [
    // GET /_matrix/client/v3/devices (spec: "Device management")
    clientRoute('GET', '/devices', 'required', async ({ requester }) => {
      const devices = await ctx.storage.read((txn) => txn.devices.forUser(requester.userId));
      return { devices: devices.map(deviceJson) };
    }),

    // GET /_matrix/client/v3/devices/{deviceId} (spec: "Device management")
    clientRoute('GET', '/devices/{deviceId}', 'required', async ({ requester, params }) => {
      const device = await ctx.storage.read((txn) => txn.devices.get(requester.userId, params.deviceId!));
      if (!device) throw notFound('Device not found');
      return deviceJson(device);
    }),

    // PUT /_matrix/client/v3/devices/{deviceId} (spec: "Device management")
    clientRoute('PUT', '/devices/{deviceId}', 'required', async ({ requester, params, json }) => {
      const body = await json();
      const displayName = optionalString(body, 'display_name');
      if (displayName !== undefined && displayName.length > MAX_DEVICE_NAME_LENGTH) {
        throw invalidParam(`Device display name is too long (max ${MAX_DEVICE_NAME_LENGTH})`);
      }
      await ctx.storage.write(async (txn) => {
        const device = await txn.devices.get(requester.userId, params.deviceId!);
        if (!device) throw notFound('Device not found');
        if (displayName === undefined || displayName === device.displayName) return;
        await txn.devices.update(requester.userId, device.deviceId, { displayName });
        await recordDeviceListChange(txn, requester.userId, { devices: [device.deviceId] });
      });
      return {};
    }),

    // DELETE /_matrix/client/v3/devices/{deviceId} (spec: "Device management"); behind user-interactive auth.
    clientRoute('DELETE', '/devices/{deviceId}', 'required', async ({ requester, params, json, request, url }) => {
      const body = await json();
      await reauthenticate(deps, requester.userId, body.auth, operationOf(request, url));
      // An unknown device is not an error (as in Synapse): the outcome the client wants holds.
      await ctx.storage.write((txn) => removeDevices(txn, requester.userId, [params.deviceId!]));
      return {};
    }),

    // POST /_matrix/client/v3/delete_devices (spec: "Device management"); behind user-interactive auth.
    clientRoute('POST', '/delete_devices', 'required', async ({ requester, json, request, url }) => {
      const body = await json();
      if (body.devices === undefined) throw missingParam('Missing parameter: devices');
      checkListLength('devices', body.devices, BOUNDS.deleteDevices);
      if (!Array.isArray(body.devices) || body.devices.some((d) => typeof d !== 'string')) {
        throw badJson('devices must be an array of strings');
      }
      const deviceIds = body.devices as string[];
      await reauthenticate(deps, requester.userId, body.auth, operationOf(request, url));
      await ctx.storage.write((txn) => removeDevices(txn, requester.userId, deviceIds));
      return {};
    }),
  ];
}
