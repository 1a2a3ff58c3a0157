// ruma's state resolution snapshots: every case resolved event by event, file
// by file and all at once must agree with each other and with the snapshot.
import { describe, expect, it } from 'vitest';
import { resolveState } from '../../../src/core/index.js';
import {
  BATCH_CASES,
  STATE_MAP_CASES,
  byIdOf,
  loadPdus,
  loadSnapshot,
  loadStateMap,
  resolveAllAtOnce,
  resolveEventByEvent,
  resolveFileByFile,
  roomVersionOf,
  sorted,
} from './ruma-fixtures.js';

describe('ruma state resolution vectors: batches', () => {
  for (const { name, files } of BATCH_CASES) {
    it(name, async () => {
      const batches = files.map(loadPdus);
      const pdus = batches.flat();
      const roomVersion = roomVersionOf(pdus);
      const byId = byIdOf(pdus);
      const getEvent = (id: string) => byId.get(id);

      const { final: eventByEvent, before } = await resolveEventByEvent(roomVersion, pdus, getEvent);
      const fileByFile = await resolveFileByFile(roomVersion, batches, getEvent);
      const allAtOnce = await resolveAllAtOnce(roomVersion, pdus, getEvent);
      const expected = sorted(loadSnapshot(name));

      expect(before.size).toBe(pdus.length);
      expect(sorted(eventByEvent)).toEqual(expected);
      expect(sorted(fileByFile)).toEqual(expected);
      expect(sorted(allAtOnce)).toEqual(expected);
    });
  }
});

describe('ruma state resolution vectors: state maps', () => {
  for (const { name, stateMaps, pdus: file } of STATE_MAP_CASES) {
    it(name, async () => {
      const pdus = loadPdus(file);
      const byId = byIdOf(pdus);
      const sets = stateMaps.map((f) => loadStateMap(f, byId));
      const resolved = await resolveState(roomVersionOf(pdus), sets, (id) => byId.get(id));
      expect(sorted(resolved)).toEqual(sorted(loadSnapshot(name)));
    });
  }
});
