// v8_kernel.mjs - runs the string-kernel guest in node's V8, for the same-run baseline of
// bench_kernel.c.
//
//     node bench/v8_kernel.mjs build/bench/kernel.wasm PASSES RUNS [--verbose]
//
// It loads the very .wasm Sluice runs and calls the same export the same way Sluice does
// (the canonical ABI: cabi_realloc for the payload, process, cabi_post_process), then
// prints one line:
//
//     v8 median_seconds=S checksum=HEX
//
// where S is the median over RUNS calls of PASSES passes each, measured after warm-up
// calls have let V8 tier the code up from Liftoff to TurboFan.
import { readFileSync } from 'node:fs';

const [path, passesArg, runsArg, flag] = process.argv.slice(2);
const passes = Number(passesArg);
const runs = Number(runsArg);
const verbose = flag === '--verbose';
if (!path || !(passes > 0) || !(runs > 0)) {
  console.error('usage: node v8_kernel.mjs KERNEL.wasm PASSES RUNS [--verbose]');
  process.exit(2);
}

const module = await WebAssembly.compile(readFileSync(path));

// A minimal wasi_snapshot_preview1: the kernel guest imports nothing, but should a
// toolchain add a WASI import, it answers ENOSYS (52) instead of failing instantiation.
const imports = {};
for (const imp of WebAssembly.Module.imports(module)) {
  if (imp.kind !== 'function') throw new Error(`unsupported import ${imp.module}.${imp.name}`);
  (imports[imp.module] ??= {})[imp.name] = () => 52;
}
const { exports } = await WebAssembly.instantiate(module, imports);
if (exports._initialize) exports._initialize();

const encoder = new TextEncoder();
const decoder = new TextDecoder();

// One event through `process`; returns the checksum payload of the one event it returns.
function call(count) {
  const payload = encoder.encode(String(count));
  const payloadPtr = exports.cabi_realloc(0, 0, 1, payload.length);
  new Uint8Array(exports.memory.buffer, payloadPtr, payload.length).set(payload);
  const metaPtr = exports.cabi_realloc(0, 0, 4, 0);
  const result = exports.process(payloadPtr, payload.length, metaPtr, 0);
  const view = new DataView(exports.memory.buffer);
  const list = view.getUint32(result + 4, true);
  const count1 = view.getUint32(result + 8, true);
  if (view.getUint8(result) !== 0 || count1 !== 1) throw new Error('the kernel failed');
  const ptr = view.getUint32(list, true);
  const len = view.getUint32(list + 4, true);
  const checksum = decoder.decode(new Uint8Array(exports.memory.buffer, ptr, len));
  if (exports.cabi_post_process) exports.cabi_post_process(result);
  return checksum;
}

function seconds(fn) {
  const start = process.hrtime.bigint();
  const value = fn();
  return [Number(process.hrtime.bigint() - start) / 1e9, value];
}

for (let i = 0; i < 6; i++) {
  const [s] = seconds(() => call(Math.max(1, passes >> 2)));
  if (verbose) console.error(`warm-up ${i}: ${((passes >> 2) * 1048576 / s / 1e9).toFixed(3)} GB/s`);
}
const times = [];
let checksum = '';
for (let r = 0; r < runs; r++) {
  const [s, value] = seconds(() => call(passes));
  times.push(s);
  checksum = value;
  if (verbose) console.error(`run ${r}: ${(passes * 1048576 / s / 1e9).toFixed(3)} GB/s`);
}
times.sort((a, b) => a - b);
const median = runs % 2 ? times[runs >> 1] : (times[runs / 2 - 1] + times[runs / 2]) / 2;
console.log(`v8 median_seconds=${median} checksum=${checksum}`);
