// Svelte compiler options for @sveltejs/vite-plugin-svelte: the defaults (Svelte 5, runes inferred per file).
export default {};
