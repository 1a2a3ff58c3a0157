// Test setup for Node 20: libp2p 3 and matrix-js-sdk 43 use Promise.withResolvers, which Node 20 lacks.
import '../src/node/polyfills.js';
