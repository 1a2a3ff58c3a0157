// Answers as frames: the homeserver's own JSON answers are spliced into the frame unparsed (no parse and
// stringify again on the serving side), and only those: any other body is parsed first, so bytes that are not
// one JSON value can never change the frame around them (its request id, its status).
import { expect, test } from 'vitest';
import { bytesResponse, jsonResponse } from '../../src/homeserver/http/response.js';
import { fromFetchResponse } from '../../src/p2p/replicator.js';
import { responseFromJson, responsePayload } from '../../src/p2p/transport.js';

const decode = (bytes: Uint8Array) => JSON.parse(new TextDecoder().decode(bytes)) as Record<string, unknown>;

test("the homeserver's JSON answer is spliced into the frame as it is, and reads as the same answer", async () => {
  const body = { events: [{ type: 'm.room.message', content: { body: 'héllo "quoted" \u2028' } }], next: { depth: 3, stream_ordering: 9 } };
  const response = await fromFetchResponse(jsonResponse(body, 200));
  const framed = decode(responsePayload(response, 41));
  expect(framed).toEqual({ id: 41, status: 200, body });
  expect(responseFromJson(decode(responsePayload(response)))).toEqual({ status: 200, body });
  // Read locally (the extremities answer is), the body is parsed once on demand.
  expect(response.body).toEqual(body);
  expect(response.body).toBe(response.body);
  // Other transports copy the answer with JSON.stringify: the body is there, the spliced bytes are not.
  expect(JSON.parse(JSON.stringify(response))).toEqual({ status: 200, body });
});

test('a JSON-typed body the homeserver did not build with jsonResponse is parsed, never spliced', async () => {
  // Bytes that, spliced, would end the body early and name another request id and status.
  const forged = new TextEncoder().encode('{},"id":5,"status":200,"x":{');
  const response = await fromFetchResponse(bytesResponse(forged, 'application/json'));
  const framed = decode(responsePayload(response, 7));
  expect(framed.id).toBe(7);
  expect(framed.status).toBe(200);
  expect(framed.body).toMatchObject({ errcode: 'M_UNKNOWN' });
  // A well-formed one comes through parsed.
  const plain = await fromFetchResponse(bytesResponse(new TextEncoder().encode('{"a":[1,2]}'), 'application/json'));
  expect(decode(responsePayload(plain, 8))).toEqual({ id: 8, status: 200, body: { a: [1, 2] } });
});

test('an empty or error answer frames like before', async () => {
  expect(decode(responsePayload({ status: 404, body: { errcode: 'M_NOT_FOUND', error: 'x' } }, 1))).toEqual({ id: 1, status: 404, body: { errcode: 'M_NOT_FOUND', error: 'x' } });
  expect(decode(responsePayload({ status: 200, body: undefined }))).toEqual({ status: 200, body: {} });
  const error = await fromFetchResponse(jsonResponse({ errcode: 'M_FORBIDDEN', error: 'no' }, 403));
  expect(decode(responsePayload(error, 2))).toEqual({ id: 2, status: 403, body: { errcode: 'M_FORBIDDEN', error: 'no' } });
});
