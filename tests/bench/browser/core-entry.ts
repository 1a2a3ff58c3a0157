// Browser entry of the core benchmarks: runs them in the page and hands the rows to the Node runner.
import { runCoreBench } from '../core-bench.js';

const w = window as unknown as { benchDone: Promise<unknown> };
w.benchDone = runCoreBench({ where: 'chromium' });
