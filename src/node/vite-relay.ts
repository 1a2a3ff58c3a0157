/**
 * `npm run dev`: a vite plugin that runs the libp2p relay beside vite's dev server and answers
 * `GET /config.json` there as `npm start` does, so the app finds its relay on its own origin in
 * development too. The relay listens on its own loopback port (vite's server does not forward
 * WebSocket upgrades to it) and stops with the dev server. Not active in builds or under vitest.
 */
import type { Plugin } from 'vite';

export function relayDevPlugin(): Plugin {
  return {
    name: 'hometab-relay',
    apply: 'serve',
    async configureServer(server) {
      if (process.env.VITEST) return;
      // libp2p needs Promise.withResolvers, which Node 20 lacks.
      await import('./polyfills.js');
      const { createRelay } = await import('../p2p/relay.js');
      const relay = await createRelay({ listen: ['/ip4/127.0.0.1/tcp/0/ws'] });
      const addresses = relay.addresses();
      server.config.logger.info(`  relay ${addresses.join(', ')}`);
      server.httpServer?.once('close', () => void relay.stop());
      server.middlewares.use('/config.json', (req, res, next) => {
        if (req.method !== 'GET' && req.method !== 'HEAD') return next();
        res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-cache' });
        res.end(req.method === 'HEAD' ? undefined : JSON.stringify({ relays: addresses }));
      });
    },
  };
}
