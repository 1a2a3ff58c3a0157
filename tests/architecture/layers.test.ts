/**
 * Enforces the layer rule of DESIGN.md by reading import statements: imports
 * only point down (core <- storage <- homeserver/p2p <- app/node <- ui), the
 * core uses no Node built-ins and no DOM, and only the composition roots wire
 * concrete storage backends.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { join, relative, resolve, dirname } from 'node:path';
import { describe, expect, it } from 'vitest';

const SRC = resolve(import.meta.dirname, '../../src');

function sourceFiles(dir: string): string[] {
  let out: string[] = [];
  for (const name of readdirSync(dir)) {
    const full = join(dir, name);
    if (statSync(full).isDirectory()) out = out.concat(sourceFiles(full));
    else if (/\.(ts|svelte)$/.test(name)) out.push(full);
  }
  return out;
}

const IMPORT_RE = /(?:^|\n)\s*(?:import|export)\s[^'"]*?from\s*['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)|(?:^|\n)\s*import\s*['"]([^'"]+)['"]/g;

function importsOf(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const found: string[] = [];
  for (const m of text.matchAll(IMPORT_RE)) found.push((m[1] ?? m[2] ?? m[3])!);
  return found;
}

/** The top-level layer (directory under src/) a project import points at, or undefined for packages. */
function layerOfImport(file: string, spec: string): string | undefined {
  if (!spec.startsWith('.')) return undefined;
  const target = relative(SRC, resolve(dirname(file), spec));
  if (target.startsWith('..')) return '<outside src>';
  return target.split(/[\\/]/)[0];
}

function layerOf(file: string): string {
  return relative(SRC, file).split(/[\\/]/)[0]!;
}

const ALLOWED: Record<string, string[]> = {
  core: ['core'],
  storage: ['core', 'storage'],
  homeserver: ['core', 'storage', 'homeserver'],
  p2p: ['core', 'storage', 'homeserver', 'p2p'],
  app: ['core', 'storage', 'homeserver', 'p2p', 'app', 'ui'],
  node: ['core', 'storage', 'homeserver', 'p2p', 'node'],
  // The UI speaks the client-server API only: never the homeserver, the transports or the storage, nor app/'s wiring.
  ui: ['ui'],
};

/**
 * Packages the UI may import at run time: svelte, and presentation libraries that know nothing of Matrix
 * (qrcode draws the invite link, marked turns the composer's markdown into HTML, DOMPurify sanitises received
 * HTML); matrix-js-sdk only as types (src/app loads the SDK, lazily).
 */
const UI_RUNTIME_PACKAGES = [/^svelte(\/|$)/, /^qrcode$/, /^marked$/, /^dompurify$/];
// The crypto API's types (verification, CryptoEvent) are not re-exported by the SDK's main entry.
const UI_TYPE_ONLY_PACKAGES = ['matrix-js-sdk', 'matrix-js-sdk/lib/crypto-api/index.js'];
const TYPE_IMPORT_RE = /(?:^|\n)\s*(?:import|export)\s+type\s[^'"]*?from\s*['"]([^'"]+)['"]/g;

const NODE_BUILTINS = new Set(builtinModules.flatMap((m) => [m, `node:${m}`]));
const CORE_PACKAGES = [/^@noble\//];
const DOM_GLOBALS = /\b(window|document|localStorage|sessionStorage|indexedDB|navigator|process|Buffer|require)\s*[.(\[]/;

const files = sourceFiles(SRC);

describe('layer rule (DESIGN.md)', () => {
  it('finds the source tree', () => {
    expect(files.some((f) => layerOf(f) === 'core')).toBe(true);
  });

  for (const file of files) {
    const layer = layerOf(file);
    const allowed = ALLOWED[layer];
    it(`${relative(SRC, file)} imports only from layers below it`, () => {
      expect(allowed, `unknown layer ${layer}`).toBeDefined();
      for (const spec of importsOf(file)) {
        const target = layerOfImport(file, spec);
        if (target === undefined) continue;
        expect(allowed, `${spec} (layer ${target})`).toContain(target);
      }
    });
  }

  for (const file of files.filter((f) => layerOf(f) === 'core')) {
    it(`${relative(SRC, file)} uses no Node built-ins, DOM or non-core packages`, () => {
      for (const spec of importsOf(file)) {
        if (spec.startsWith('.')) continue;
        expect(NODE_BUILTINS.has(spec), `Node built-in ${spec}`).toBe(false);
        expect(CORE_PACKAGES.some((re) => re.test(spec)), `package ${spec} is not allowed in core`).toBe(true);
      }
      const code = readFileSync(file, 'utf8').replace(/\/\*[\s\S]*?\*\/|\/\/.*$/gm, '');
      expect(code.match(DOM_GLOBALS)?.[0], 'DOM or Node global').toBeUndefined();
    });
  }

  for (const file of files.filter((f) => layerOf(f) === 'ui')) {
    it(`${relative(SRC, file)} imports svelte, and matrix-js-sdk only as types`, () => {
      const text = readFileSync(file, 'utf8');
      const typeOnly = new Set([...text.matchAll(TYPE_IMPORT_RE)].map((m) => m[1]!));
      for (const spec of importsOf(file)) {
        if (spec.startsWith('.')) continue;
        if (UI_RUNTIME_PACKAGES.some((re) => re.test(spec))) continue;
        expect(UI_TYPE_ONLY_PACKAGES.includes(spec) && typeOnly.has(spec), `${spec} in the UI (only svelte, and matrix-js-sdk as types)`).toBe(true);
      }
      const valueImports = [...text.matchAll(/(?:^|\n)\s*import\s+(?!type\s)[^'"]*?from\s*['"]matrix-js-sdk(?:\/[^'"]*)?['"]/g)];
      expect(valueImports, 'matrix-js-sdk imported as a value').toEqual([]);
    });
  }

  for (const file of files.filter((f) => ['homeserver', 'p2p'].includes(layerOf(f)))) {
    it(`${relative(SRC, file)} sees storage only through its interface`, () => {
      for (const spec of importsOf(file)) {
        if (layerOfImport(file, spec) !== 'storage') continue;
        expect(spec, 'concrete storage backends are wired in app/ and node/ only').not.toMatch(/\/(memory|idb|sqlite)\//);
      }
    });
  }
});
