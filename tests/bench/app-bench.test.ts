// The app benchmark's first-load accounting on a small built app (tests/bench/fixtures/built-app): the
// entry script, modulepreloads and their static imports count; a chunk reached only by import() does not.
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { firstLoadFiles, staticImportsOf } from './app-bench.js';

const BUILT = resolve(import.meta.dirname, 'fixtures/built-app');

describe('first-load JavaScript of a built app', () => {
  it('follows static imports from index.html and leaves dynamic imports out', async () => {
    const files = await firstLoadFiles(BUILT);
    expect(files.js.sort()).toEqual(['assets/index-a1.js', 'assets/preloaded-d4.js', 'assets/shared-b2.js', 'assets/side-effect-f6.js']);
    expect(files.css).toEqual(['assets/index-e5.css']);
  });

  it('reads minified import forms and skips import()', () => {
    expect(staticImportsOf('import{a as b}from"./x.js";import"./y.js";import("./z.js");export{c}from "../w.js"').sort()).toEqual(['../w.js', './x.js', './y.js']);
  });
});
