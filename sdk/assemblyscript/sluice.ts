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
// Log with `log(line)` (stderr) or `logging.info(context, message)` (wasi:logging, with
// a level). Do not use `console.*`, `Date` or `process`: in AssemblyScript they import
// functions from "env", and the host refuses modules with such imports.
//
// Capabilities (see "capabilities" below): `logging`, `wasiConfig(key)`, key-value
// buckets (`Bucket.open(name)`, `get`, `set`, `increment`, ...) and outgoing HTTP
// (`httpSend`, `httpGet`). A module imports only what it calls; key-value and HTTP need
// a grant in the pipeline file (docs/capabilities/). Fallible calls return an ordinary
// value and set an `error` field (AssemblyScript has no exceptions): check it.
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

// ---- capabilities ----------------------------------------------------------------------
//
// Logging, the node's configuration through wasi:config, key-value buckets and outgoing
// HTTP. Each is a Wasm import, and a module imports only the functions it calls, so
// `upper.ts` imports none of them. Key-value and HTTP need a grant in the pipeline file
// (`capabilities:`); Sluice refuses to load a module that imports one its node was not
// granted. docs/capabilities/ has a page for each. The host returns strings and lists
// through cabi_realloc; the wrappers copy them into managed objects and free the blocks.

/** The wasi:logging levels, in the WIT order. */
export enum Level {
  Trace = 0,
  Debug = 1,
  Info = 2,
  Warn = 3,
  Error = 4,
  Critical = 5,
}

/** wasi:logging (always granted): `logging.info("context", "message")`. The host tags
 *  each line with the node id; the node's `capabilities.logging.level` (default info)
 *  drops the lines below it. */
export namespace logging {
  /** Logs `message` at `level`; `context` ("" for none) groups related lines. */
  export function log(level: Level, context: string, message: string): void {
    const contextBytes = String.UTF8.encode(context);
    const messageBytes = String.UTF8.encode(message);
    wasi_log(
      <i32>level,
      changetype<usize>(contextBytes), <usize>contextBytes.byteLength,
      changetype<usize>(messageBytes), <usize>messageBytes.byteLength,
    );
  }
  export function trace(context: string, message: string): void { log(Level.Trace, context, message); }
  export function debug(context: string, message: string): void { log(Level.Debug, context, message); }
  export function info(context: string, message: string): void { log(Level.Info, context, message); }
  export function warn(context: string, message: string): void { log(Level.Warn, context, message); }
  export function error(context: string, message: string): void { log(Level.Error, context, message); }
  export function critical(context: string, message: string): void {
    log(Level.Critical, context, message);
  }
}

/** The value of configuration key `key` through wasi:config (always granted), or null
 *  when it is not configured (or when the host reports an error; Sluice never does).
 *  `config(key)` reads the same values from the copy init received and imports nothing;
 *  this asks the host, as any component host providing wasi:config answers it. */
export function wasiConfig(key: string): string | null {
  const keyBytes = String.UTF8.encode(key);
  wasi_config_get(changetype<usize>(keyBytes), <usize>keyBytes.byteLength, RET_AREA);
  // result<option<string>, error>: option tag at 4, string at 8 / error tag at 4, string at 8.
  if (load<u8>(RET_AREA) != 0) {
    liftString(<usize>load<u32>(RET_AREA, 8), <usize>load<u32>(RET_AREA, 12)); // freed
    return null;
  }
  if (load<u8>(RET_AREA, 4) == 0) return null;
  return liftString(<usize>load<u32>(RET_AREA, 8), <usize>load<u32>(RET_AREA, 12));
}

/** Every configuration pair through wasi:config, or null when the host reports an error. */
export function wasiConfigAll(): Array<Meta> | null {
  wasi_config_get_all(RET_AREA);
  if (load<u8>(RET_AREA) != 0) {
    liftString(<usize>load<u32>(RET_AREA, 8), <usize>load<u32>(RET_AREA, 12));
    return null;
  }
  return liftPairs(<usize>load<u32>(RET_AREA, 4), <usize>load<u32>(RET_AREA, 8));
}

/** What went wrong in a key-value or HTTP call. `code` is the case of the WIT `error`
 *  variant (KvErrorCode, HttpErrorCode); `message` its name, then ": " and the host's
 *  explanation when it gives one ("other: ...", "denied: ..."). */
export class CapabilityError {
  constructor(public code: i32, public message: string) {}
}

/** The cases of wasi:keyvalue's `error`. */
export enum KvErrorCode {
  NoSuchStore = 0,
  AccessDenied = 1,
  Other = 2,
}

/** The cases of outgoing-http's `error`. */
export enum HttpErrorCode {
  Denied = 0,
  InvalidRequest = 1,
  Timeout = 2,
  TooLarge = 3,
  Failed = 4,
}

function kvErrorName(code: u8): string {
  if (code == KvErrorCode.NoSuchStore) return "no-such-store";
  if (code == KvErrorCode.AccessDenied) return "access-denied";
  return code == KvErrorCode.Other ? "other" : "unknown error";
}

function httpErrorName(code: u8): string {
  if (code == HttpErrorCode.Denied) return "denied";
  if (code == HttpErrorCode.InvalidRequest) return "invalid-request";
  if (code == HttpErrorCode.Timeout) return "timeout";
  if (code == HttpErrorCode.TooLarge) return "too-large";
  return code == HttpErrorCode.Failed ? "failed" : "unknown error";
}

/** Lifts an error variant at `at`: a u8 case, then at `at + 4` the string of the cases
 *  whose bit is set in `withText` (the host writes none for the others). */
function liftError(at: usize, name: (code: u8) => string, withText: u32): CapabilityError {
  const code = load<u8>(at);
  let message = name(code);
  if (code < 32 && ((withText >> code) & 1) != 0) {
    const text = liftString(<usize>load<u32>(at, 4), <usize>load<u32>(at, 8));
    if (text.length > 0) message += ": " + text;
  }
  return new CapabilityError(<i32>code, message);
}

function liftKvError(at: usize): CapabilityError {
  return liftError(at, kvErrorName, 1 << KvErrorCode.Other);
}

/** Copies a host-lowered list<u8> into a managed array and frees the host's block. */
function liftBytes(ptr: usize, len: usize): Uint8Array {
  const bytes = new Uint8Array(<i32>len);
  if (len > 0) {
    memory.copy(bytes.dataStart, ptr, len);
    heap.free(ptr);
  }
  return bytes;
}

/**
 * A wasi:keyvalue bucket (granted per bucket: `capabilities: {keyvalue: {NAME: BACKEND}}`).
 * Every call sets `error`: null on success, the reason otherwise, so check it after a
 * call whose result alone cannot tell (a null from `get` is also "not found"). All the
 * instances and workers of a pipeline share a bucket; `increment` is atomic across them.
 * Open a bucket once, in init, and keep it in a global.
 */
export class Bucket {
  /** The outcome of the last call on this bucket: null when it succeeded. */
  error: CapabilityError | null = null;
  private handle: u32 = 0;
  private isOpen: bool = false;

  /** Opens bucket `name`; check `.error` (the bucket is unusable when it is set). */
  static open(name: string): Bucket {
    const bucket = new Bucket();
    const nameBytes = String.UTF8.encode(name);
    kv_open(changetype<usize>(nameBytes), <usize>nameBytes.byteLength, RET_AREA);
    if (load<u8>(RET_AREA) != 0) {
      bucket.error = liftKvError(RET_AREA + 4);
    } else {
      bucket.handle = load<u32>(RET_AREA, 4);
      bucket.isOpen = true;
    }
    return bucket;
  }

  /** Releases the handle (the data stays); later calls fail. */
  close(): void {
    if (this.isOpen) kv_drop(this.handle);
    this.isOpen = false;
  }

  /** False (and `error` set) when the bucket is not open. */
  private ready(): bool {
    if (this.isOpen) {
      this.error = null;
      return true;
    }
    if (this.error === null) this.error = new CapabilityError(KvErrorCode.Other, "other: the bucket is closed");
    return false;
  }

  /** Result<_, error>-shaped return area: tag at 0, error at 4. */
  private check(): bool {
    if (load<u8>(RET_AREA) == 0) return true;
    this.error = liftKvError(RET_AREA + 4);
    return false;
  }

  /** The value at `key`; null when there is none, or when the call failed (`error`). */
  get(key: string): Uint8Array | null {
    if (!this.ready()) return null;
    const keyBytes = String.UTF8.encode(key);
    kv_get(this.handle, changetype<usize>(keyBytes), <usize>keyBytes.byteLength, RET_AREA);
    // result<option<list<u8>>, error>: option tag at 4, list at 8 / error at 4.
    if (!this.check() || load<u8>(RET_AREA, 4) == 0) return null;
    return liftBytes(<usize>load<u32>(RET_AREA, 8), <usize>load<u32>(RET_AREA, 12));
  }

  /** The value at `key` decoded as UTF-8, or null as for `get`. */
  getString(key: string): string | null {
    const value = this.get(key);
    if (value === null) return null;
    return String.UTF8.decodeUnsafe(value.dataStart, <usize>value.length);
  }

  /** Stores `value` at `key`; false when the call failed (`error`). */
  set(key: string, value: Uint8Array): bool {
    if (!this.ready()) return false;
    const keyBytes = String.UTF8.encode(key);
    kv_set(this.handle, changetype<usize>(keyBytes), <usize>keyBytes.byteLength,
           value.dataStart, <usize>value.length, RET_AREA);
    return this.check();
  }

  /** `set` with the UTF-8 bytes of `value`. */
  setString(key: string, value: string): bool {
    return this.set(key, Uint8Array.wrap(String.UTF8.encode(value)));
  }

  /** Removes `key` (succeeds when it was absent); false when the call failed. */
  delete(key: string): bool {
    if (!this.ready()) return false;
    const keyBytes = String.UTF8.encode(key);
    kv_delete(this.handle, changetype<usize>(keyBytes), <usize>keyBytes.byteLength, RET_AREA);
    return this.check();
  }

  /** Whether `key` has a value; false also when the call failed (`error`). */
  exists(key: string): bool {
    if (!this.ready()) return false;
    const keyBytes = String.UTF8.encode(key);
    kv_exists(this.handle, changetype<usize>(keyBytes), <usize>keyBytes.byteLength, RET_AREA);
    return this.check() && load<u8>(RET_AREA, 4) != 0;
  }

  /** One page of keys: `cursor` null for the first page, then the previous page's
   *  `nextCursor`; null when the call failed (`error`). */
  listKeys(cursor: string | null = null): KeyPage | null {
    if (!this.ready()) return null;
    let cursorPtr: usize = 0;
    let cursorLen: usize = 0;
    let cursorBytes = new ArrayBuffer(0);
    if (cursor !== null) {
      cursorBytes = String.UTF8.encode(cursor);
      cursorPtr = changetype<usize>(cursorBytes);
      cursorLen = <usize>cursorBytes.byteLength;
    }
    kv_list_keys(this.handle, cursor !== null ? 1 : 0, cursorPtr, cursorLen, RET_AREA);
    if (!this.check()) return null;
    // key-response: keys (list<string>) at 4, cursor option tag at 12, string at 16.
    const records = <usize>load<u32>(RET_AREA, 4);
    const count = <usize>load<u32>(RET_AREA, 8);
    const page = new KeyPage();
    for (let i: usize = 0; i < count; i++) {
      const record = records + i * 8;
      page.keys.push(liftString(<usize>load<u32>(record), <usize>load<u32>(record, 4)));
    }
    if (count > 0) heap.free(records);
    if (load<u8>(RET_AREA, 12) != 0) {
      page.nextCursor = liftString(<usize>load<u32>(RET_AREA, 16), <usize>load<u32>(RET_AREA, 20));
    }
    return page;
  }

  /** Adds `delta` to the counter at `key` (absent: 0) and returns the new value; 0 with
   *  `error` set when the call failed (a value that is not a decimal integer, ...). */
  increment(key: string, delta: i64 = 1): i64 {
    if (!this.ready()) return 0;
    const keyBytes = String.UTF8.encode(key);
    kv_increment(this.handle, changetype<usize>(keyBytes), <usize>keyBytes.byteLength, delta,
                 RET_AREA);
    // result<s64, error>: the s64 aligns the payload to 8, the error's too.
    if (load<u8>(RET_AREA) != 0) {
      this.error = liftKvError(RET_AREA + 8);
      return 0;
    }
    return load<i64>(RET_AREA, 8);
  }
}

/** One page of keys, in no particular order. */
export class KeyPage {
  keys: Array<string> = [];
  /** Pass it to the next `listKeys`; null when this was the last page. */
  nextCursor: string | null = null;
}

/** An outgoing HTTP request (granted with `capabilities: {http: {allowed_hosts: [...]}}`). */
export class HttpRequest {
  headers: Array<Meta> = [];
  body: Uint8Array = new Uint8Array(0);
  /** `method`: GET, POST, PUT, PATCH, DELETE or HEAD; `url`: absolute http(s). */
  constructor(public method: string, public url: string) {}

  /** Adds a header; returns the request, so calls chain. */
  header(name: string, value: string): HttpRequest {
    this.headers.push(new Meta(name, value));
    return this;
  }
}

/** The response, or the reason there is none (`error`). Any status is a response. */
export class HttpResponse {
  status: u16 = 0;
  headers: Array<Meta> = [];
  body: Uint8Array = new Uint8Array(0);
  error: CapabilityError | null = null;

  /** The first header named `name` (ASCII case-insensitive), or null. */
  header(name: string): string | null {
    const wanted = name.toLowerCase();
    for (let i = 0; i < this.headers.length; i++) {
      if (this.headers[i].key.toLowerCase() == wanted) return this.headers[i].value;
    }
    return null;
  }

  /** The body decoded as UTF-8. */
  bodyString(): string {
    return String.UTF8.decodeUnsafe(this.body.dataStart, <usize>this.body.length);
  }
}

/** Sends `request` and waits for the whole response (after the redirects the grant
 *  allows); check `.error` first. Headers the grant sets for the host are added by the
 *  host and never seen here. */
export function httpSend(request: HttpRequest): HttpResponse {
  const method = String.UTF8.encode(request.method);
  const url = String.UTF8.encode(request.url);
  const count = <usize>request.headers.length;
  // The header records point into these encoded strings, kept alive by `encoded`.
  const encoded = new Array<ArrayBuffer>();
  let records: usize = 4;
  if (count > 0) records = heap.alloc(count * 16);
  for (let i: usize = 0; i < count; i++) {
    const name = String.UTF8.encode(request.headers[<i32>i].key);
    const value = String.UTF8.encode(request.headers[<i32>i].value);
    encoded.push(name);
    encoded.push(value);
    const record = records + i * 16;
    store<u32>(record, <u32>changetype<usize>(name));
    store<u32>(record, <u32>name.byteLength, 4);
    store<u32>(record, <u32>changetype<usize>(value), 8);
    store<u32>(record, <u32>value.byteLength, 12);
  }
  http_send(
    changetype<usize>(method), <usize>method.byteLength,
    changetype<usize>(url), <usize>url.byteLength,
    records, count,
    request.body.dataStart, <usize>request.body.length,
    RET_AREA,
  );
  if (count > 0) heap.free(records);
  const response = new HttpResponse();
  // result<response, error>: status at 4, headers at 8, body at 16 / error at 4.
  if (load<u8>(RET_AREA) != 0) {
    const withText: u32 = (1 << HttpErrorCode.Denied) | (1 << HttpErrorCode.InvalidRequest) |
                          (1 << HttpErrorCode.Failed);
    response.error = liftError(RET_AREA + 4, httpErrorName, withText);
    return response;
  }
  response.status = load<u16>(RET_AREA, 4);
  response.headers = liftPairs(<usize>load<u32>(RET_AREA, 8), <usize>load<u32>(RET_AREA, 12));
  response.body = liftBytes(<usize>load<u32>(RET_AREA, 16), <usize>load<u32>(RET_AREA, 20));
  return response;
}

/** GET `url`. */
export function httpGet(url: string): HttpResponse {
  return httpSend(new HttpRequest("GET", url));
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

// The capability imports (docs/design/capabilities.md has their core signatures and
// return areas). Results that do not fit one value go to RET_AREA: 24 bytes aligned to 8
// hold every result in the world, and each wrapper reads it before the next call.

// @ts-ignore: decorator
@external("wasi:logging/logging@0.1.0-draft", "log")
declare function wasi_log(level: i32, ctx: usize, ctxLen: usize, msg: usize, msgLen: usize): void;

// @ts-ignore: decorator
@external("wasi:config/store@0.2.0-draft", "get")
declare function wasi_config_get(key: usize, keyLen: usize, ret: usize): void;

// @ts-ignore: decorator
@external("wasi:config/store@0.2.0-draft", "get-all")
declare function wasi_config_get_all(ret: usize): void;

// @ts-ignore: decorator
@external("wasi:keyvalue/store@0.2.0-draft2", "open")
declare function kv_open(name: usize, nameLen: usize, ret: usize): void;

// @ts-ignore: decorator
@external("wasi:keyvalue/store@0.2.0-draft2", "[method]bucket.get")
declare function kv_get(bucket: u32, key: usize, keyLen: usize, ret: usize): void;

// @ts-ignore: decorator
@external("wasi:keyvalue/store@0.2.0-draft2", "[method]bucket.set")
declare function kv_set(bucket: u32, key: usize, keyLen: usize, value: usize, valueLen: usize,
                        ret: usize): void;

// @ts-ignore: decorator
@external("wasi:keyvalue/store@0.2.0-draft2", "[method]bucket.delete")
declare function kv_delete(bucket: u32, key: usize, keyLen: usize, ret: usize): void;

// @ts-ignore: decorator
@external("wasi:keyvalue/store@0.2.0-draft2", "[method]bucket.exists")
declare function kv_exists(bucket: u32, key: usize, keyLen: usize, ret: usize): void;

// @ts-ignore: decorator
@external("wasi:keyvalue/store@0.2.0-draft2", "[method]bucket.list-keys")
declare function kv_list_keys(bucket: u32, cursorIsSome: i32, cursor: usize, cursorLen: usize,
                              ret: usize): void;

// @ts-ignore: decorator
@external("wasi:keyvalue/store@0.2.0-draft2", "[resource-drop]bucket")
declare function kv_drop(bucket: u32): void;

// @ts-ignore: decorator
@external("wasi:keyvalue/atomics@0.2.0-draft2", "increment")
declare function kv_increment(bucket: u32, key: usize, keyLen: usize, delta: i64, ret: usize): void;

// @ts-ignore: decorator
@external("sluice:processor/outgoing-http@0.1.0", "send")
declare function http_send(method: usize, methodLen: usize, url: usize, urlLen: usize,
                           headers: usize, headerCount: usize, body: usize, bodyLen: usize,
                           ret: usize): void;

const RET_AREA: usize = memory.data(24, 8);

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
