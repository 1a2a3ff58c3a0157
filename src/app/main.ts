/**
 * The page's entry: mounts the UI at once (first paint needs neither the SDK nor the peer) and hands it the
 * session host, which starts the profile's server when the UI asks.
 */
import { mount } from 'svelte';
import App from '../ui/App.svelte';
import { createAppHost, profileFromLocation } from './boot.js';

performance.mark('hometab:app-chunk-loaded');

const host = createAppHost({ profile: profileFromLocation(location.search), origin: location.origin });
mount(App, { target: document.getElementById('app')!, props: { host } });
