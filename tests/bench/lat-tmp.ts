import '../../src/node/polyfills.js';
export {};
import { runReplicationBench } from './replication-bench.js';
import { formatTable } from './report.js';
console.log(formatTable(await runReplicationBench({ catchUpEvents: Number(process.env.N ?? 200) })));
