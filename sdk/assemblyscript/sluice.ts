// sluice.ts - write a Sluice processor in AssemblyScript.
//
//     import { Event, Output, processor } from "../../../sdk/assemblyscript/sluice";
//     export { cabi_realloc, process, cabi_post_process, init, cabi_post_init, }
//       from "../../../sdk/assemblyscript/sluice";
//
//     function upper(input: Event, out: Output): void {
//       const payload = input.payload;
//       for (let i = 0; i < payload.length; i++) {
//         const c = payload[i];
//         if (c >= 0x61 && c <= 0x7a) payload[i] = c - 0x20;
//       }
//       out.emit(input);
//     }
//     processor(upper);
//
//     sdk/assemblyscript/node_modules/.bin/asc upper.ts \
//         --config sdk/assemblyscript/asconfig.json -o upper.wasm
//
// The `export { ... } from` line is required: only the entry file's exports become the
// module's exports. asconfig.json routes AssemblyScript's `abort`, `trace` and `seed`
// to the functions at the end of this file, so the module imports nothing but WASI, and
// exports `_initialize`, which runs the top-level `processor(...)` call.
//
// A processor function receives the input event (its own copy, free to change and to
// emit) and fills `out`: no `emit` drops the event, one transforms it, several fan out;
// `out.fail(message)` fails it instead. An optional init function runs once per instance
// before the first event; `config(key)` reads the node's configuration, there and later.
//
// Memory: the host's copy of the input (cabi_realloc allocations) is copied into managed
// objects and freed before the processor runs; returned events stay referenced until the
// host has copied them out (cabi_post_process), then the garbage collector reclaims them.
// Nothing accumulates between events. An `abort` (failed assertion, `throw`, bad index)
// traps after logging its message: the host fails that event and replaces the instance.
//
// Log with `log(line)`. Do not use `console.*`, `Date` or `process`: in AssemblyScript
// they import functions from "env", and the host refuses modules with such imports.
//
// This file implements the canonical-ABI lowering of the world in wit/processor.wit.

// ---- the API -------------------------------------------------------------------------

/** One metadata pair. */
export class Meta {
  constructor(public key: string, public value: string) {}
}

/** One record: payload bytes plus ordered metadata (duplicate keys are possible). */
export class Event {
  constructor(public payload: Uint8Array, public metadata: Array<Meta> = []) {}

  /** An event whose payload is `text` as UTF-8. */
  static fromString(text: string, metadata: Array<Meta> = []): Event {
    return new Event(Uint8Array.wrap(String.UTF8.encode(text)), metadata);
  }

  /** The payload decoded as UTF-8 (invalid sequences become U+FFFD). */
  payloadString(): string {
    return String.UTF8.decodeUnsafe(this.payload.dataStart, <usize>this.payload.length);
  }

  /** A new event with `payload` and a copy of this event's metadata. */
  withPayload(payload: Uint8Array): Event {
    return new Event(payload, this.metadata.slice(0));
  }

  /** The value of the first pair with key `key`, or null. */
  meta(key: string): string | null {
    for (let i = 0; i < this.metadata.length; i++) {
      if (this.metadata[i].key == key) return this.metadata[i].value;
    }
    return null;
  }

  /** Replaces the first pair with key `key`, or appends one. */
  setMeta(key: string, value: string): void {
    for (let i = 0; i < this.metadata.length; i++) {
      if (this.metadata[i].key == key) {
        this.metadata[i] = new Meta(key, value);
        return;
      }
    }
    this.metadata.push(new Meta(key, value));
  }

  /** Removes every pair with key `key`. */
  removeMeta(key: string): void {
    const kept = new Array<Meta>();
    for (let i = 0; i < this.metadata.length; i++) {
      if (this.metadata[i].key != key) kept.push(this.metadata[i]);
    }
    this.metadata = kept;
  }
}

/** The result of one call, under construction. */
export class Output {
  events: Array<Event> = [];
  error: string | null = null;

  /** Appends an event; events reach the host in the order they were emitted. */
  emit(event: Event): void {
    this.events.push(event);
  }

  /** Fails the call with `message`: the input goes to the node's `.errors` output. */
  fail(message: string): void {
    this.error = message;
  }
}

/** A processor: reads `input`, emits to `out` (or fails it). */
export type ProcessFn = (input: Event, out: Output) => void;

/** An init function: returns null to accept the configuration, or an error message. */
export type InitFn = () => string | null;

/** Declares the processor, and optionally its init function. Call it once, at top level. */
export function processor(process: ProcessFn, init: InitFn | null = null): void {
  processFn = process;
  initFn = init;
}

/** The value of configuration key `key` (the node's `config` map), or null. */
export function config(key: string): string | null {
  for (let i = 0; i < configStore.length; i++) {
    if (configStore[i].key == key) return configStore[i].value;
  }
  return null;
}

/** Every configuration pair, in the pipeline file's order. */
export function configPairs(): Array<Meta> {
  return configStore;
}

/** Writes one line to the host log (WASI stderr); the host tags it with the node id. */
export function log(line: string): void {
  const len = <usize>String.UTF8.byteLength(line);
  const text = heap.alloc(len + 1);
  String.UTF8.encodeUnsafe(changetype<usize>(line), line.length, text);
  store<u8>(text + len, 0x0a);
  const iovec = memory.data(8, 4);
  const written = memory.data(4, 4);
  let at = text;
  let rest = len + 1;
  while (rest > 0) {
    store<u32>(iovec, <u32>at);
    store<u32>(iovec, <u32>rest, 4);
    if (fd_write(2, iovec, 1, written) != 0) break;
    const n = <usize>load<u32>(written);
    if (n == 0 || n > rest) break;
    at += n;
    rest -= n;
  }
  heap.free(text);
}

// ---- the canonical ABI ---------------------------------------------------------------
//
// Layouts (wasm32, little-endian): a string or list is (ptr: u32, len: u32); a metadata
// pair is 16 bytes (key, value); an event is 16 bytes (payload, metadata list); the
// result area is 12 bytes: a u8 discriminant (0 ok, 1 err) and the list or string at 4.

// @ts-ignore: decorator
@external("wasi_snapshot_preview1", "fd_write")
declare function fd_write(fd: u32, iovs: usize, iovsLen: usize, written: usize): u16;

// @ts-ignore: decorator
@external("wasi_snapshot_preview1", "random_get")
declare function random_get(buf: usize, len: usize): u16;

let processFn: ProcessFn = noProcessor;
let initFn: InitFn | null = null;
let configStore: Array<Meta> = [];

// What the last call returned, kept until the host has copied it out.
let returnedEvents: Array<Event> = [];
let returnedBlocks: Array<usize> = []; // heap.alloc blocks to free

const RESULT_AREA: usize = memory.data(12, 4);

function noProcessor(input: Event, out: Output): void {
  out.fail("no processor declared: call processor(fn) at the top level of the entry file");
}

/** cabi_realloc: unmanaged heap blocks (16-byte aligned), outside the garbage collector. */
export function cabi_realloc(oldPtr: usize, oldSize: usize, align: usize, newSize: usize): usize {
  if (align > 16) unreachable();
  if (oldSize == 0) return newSize == 0 ? align : heap.alloc(newSize);
  if (newSize == 0) {
    heap.free(oldPtr);
    return align;
  }
  return heap.realloc(oldPtr, newSize);
}

export function cabi_post_process(result: usize): void {
  release();
}

export function cabi_post_init(result: usize): void {
  release();
}

function release(): void {
  for (let i = 0; i < returnedBlocks.length; i++) heap.free(returnedBlocks[i]);
  returnedBlocks.length = 0;
  returnedEvents.length = 0;
}

/** Copies a host-lowered string into a managed one and frees the host's block. */
function liftString(ptr: usize, len: usize): string {
  if (len == 0) return "";
  const text = String.UTF8.decodeUnsafe(ptr, len);
  heap.free(ptr);
  return text;
}

function liftPairs(ptr: usize, count: usize): Array<Meta> {
  const pairs = new Array<Meta>(<i32>count);
  for (let i: usize = 0; i < count; i++) {
    const record = ptr + i * 16;
    const key = liftString(<usize>load<u32>(record), <usize>load<u32>(record, 4));
    const value = liftString(<usize>load<u32>(record, 8), <usize>load<u32>(record, 12));
    pairs[<i32>i] = new Meta(key, value);
  }
  if (count > 0) heap.free(ptr);
  return pairs;
}

/** A heap block holding `text` as UTF-8, freed by release(); its (ptr, len) at `at`. */
function lowerString(text: string, at: usize): void {
  const len = <usize>String.UTF8.byteLength(text);
  let ptr: usize = 1;
  if (len > 0) {
    ptr = heap.alloc(len);
    String.UTF8.encodeUnsafe(changetype<usize>(text), text.length, ptr);
    returnedBlocks.push(ptr);
  }
  store<u32>(at, <u32>ptr);
  store<u32>(at, <u32>len, 4);
}

function lowerResult(discriminant: u8): usize {
  store<u8>(RESULT_AREA, discriminant);
  return RESULT_AREA;
}

function lowerEvents(events: Array<Event>): usize {
  returnedEvents = events; // keeps the payloads alive until release()
  const count = <usize>events.length;
  let records: usize = 4;
  if (count > 0) {
    records = heap.alloc(count * 16);
    returnedBlocks.push(records);
  }
  for (let i: usize = 0; i < count; i++) {
    const event = events[<i32>i];
    const record = records + i * 16;
    const metaCount = <usize>event.metadata.length;
    let pairs: usize = 4;
    if (metaCount > 0) {
      pairs = heap.alloc(metaCount * 16);
      returnedBlocks.push(pairs);
    }
    for (let j: usize = 0; j < metaCount; j++) {
      const pair = event.metadata[<i32>j];
      lowerString(pair.key, pairs + j * 16);
      lowerString(pair.value, pairs + j * 16 + 8);
    }
    store<u32>(record, <u32>event.payload.dataStart);
    store<u32>(record, <u32>event.payload.length, 4);
    store<u32>(record, <u32>pairs, 8);
    store<u32>(record, <u32>metaCount, 12);
  }
  store<u32>(RESULT_AREA, <u32>records, 4);
  store<u32>(RESULT_AREA, <u32>count, 8);
  return lowerResult(0);
}

function lowerError(message: string): usize {
  lowerString(message, RESULT_AREA + 4);
  return lowerResult(1);
}

export function process(
  payloadPtr: usize, payloadLen: usize, metaPtr: usize, metaCount: usize,
): usize {
  release(); // in case the host skipped cabi_post_process
  const payload = new Uint8Array(<i32>payloadLen);
  if (payloadLen > 0) {
    memory.copy(payload.dataStart, payloadPtr, payloadLen);
    heap.free(payloadPtr);
  }
  const input = new Event(payload, liftPairs(metaPtr, metaCount));
  const out = new Output();
  processFn(input, out);
  const error = out.error;
  if (error !== null) return lowerError(error);
  return lowerEvents(out.events);
}

export function init(configPtr: usize, configCount: usize): usize {
  release();
  configStore = liftPairs(configPtr, configCount);
  const hook = initFn;
  if (hook !== null) {
    const error = hook();
    if (error !== null) return lowerError(error);
  }
  return lowerResult(0);
}

// ---- AssemblyScript runtime hooks (see asconfig.json) ---------------------------------

// @ts-ignore: decorator
@global
export function __sluice_abort(
  message: string | null, file: string | null, line: u32, column: u32,
): void {
  let text = "abort: " + (message !== null ? message : "(no message)");
  if (file !== null) text += " at " + file + ":" + line.toString() + ":" + column.toString();
  log(text);
  unreachable();
}

// @ts-ignore: decorator
@global
export function __sluice_trace(
  message: string, n: i32 = 0, a0: f64 = 0, a1: f64 = 0, a2: f64 = 0, a3: f64 = 0, a4: f64 = 0,
): void {
  let text = "trace: " + message;
  if (n > 0) text += " " + a0.toString();
  if (n > 1) text += " " + a1.toString();
  if (n > 2) text += " " + a2.toString();
  if (n > 3) text += " " + a3.toString();
  if (n > 4) text += " " + a4.toString();
  log(text);
}

// @ts-ignore: decorator
@global
export function __sluice_seed(): f64 {
  const bytes = memory.data(8, 8);
  const value = random_get(bytes, 8) == 0 ? <f64>load<u64>(bytes) : 0;
  return value != 0 ? value : 1; // any non-zero seed will do
}
