/**
 * The homeserver's public entry: what app/ and node/ compose.
 */
export { createHomeserver, type Homeserver, type HomeserverOptions } from './create-homeserver.js';
export { DEFAULT_CONFIG, type HomeserverConfig, type Clock } from './context.js';
