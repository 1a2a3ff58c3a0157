/**
 * Building HTTP responses: JSON with the spec's content type and the CORS
 * headers every client-server response carries (browser clients call us
 * cross-origin).
 */
export const CORS_HEADERS: Record<string, string> = {
  'access-control-allow-origin': '*',
  'access-control-allow-methods': 'GET, HEAD, POST, PUT, DELETE, OPTIONS',
  'access-control-allow-headers': 'X-Requested-With, Content-Type, Authorization, Date',
  'access-control-max-age': '86400',
  // A 429's Retry-After is readable cross-origin only when exposed (the body's retry_after_ms always is).
  'access-control-expose-headers': 'Retry-After',
};

/** Where a Response keeps the text it was built from; the Node adapter sends it without reading the body stream. */
const RESPONSE_TEXT = Symbol.for('hometab.responseText');

export function jsonResponse(body: unknown, status = 200, headers: Record<string, string> = {}): Response {
  return jsonTextResponse(JSON.stringify(body), status, headers);
}

/**
 * A JSON response from `text`, one JSON value the caller assembled from JSON.stringify's output (a large answer
 * joined from its parts' own texts, stringified once each where a size bound needed them anyway).
 */
export function jsonTextResponse(text: string, status = 200, headers: Record<string, string> = {}): Response {
  const response = new Response(text, {
    status,
    headers: { 'content-type': 'application/json', ...CORS_HEADERS, ...headers },
  });
  (response as Response & { [RESPONSE_TEXT]?: string })[RESPONSE_TEXT] = text;
  return response;
}

/**
 * The text a JSON response was built from (jsonResponse, jsonTextResponse), while its body is unread: only
 * JSON.stringify's output is ever kept there, so it is one well-formed JSON value. Undefined for any other Response.
 */
export function builtText(response: Response): string | undefined {
  const text = (response as { [RESPONSE_TEXT]?: unknown })[RESPONSE_TEXT];
  return typeof text === 'string' && !response.bodyUsed ? text : undefined;
}

export function bytesResponse(body: Uint8Array, contentType: string, headers: Record<string, string> = {}): Response {
  return new Response(body as unknown as BodyInit, {
    status: 200,
    headers: { 'content-type': contentType, 'content-length': String(body.byteLength), ...CORS_HEADERS, ...headers },
  });
}
