// upper.ts - uppercases the payload (ASCII letters), in AssemblyScript. The output keeps
// the input's metadata.
//
// config:  suffix   optional text appended to every payload (one line; default none)
//
//     sluice invoke upper_as.wasm --payload hello --config suffix=!   ->  HELLO!

import { Event, Output, config, log, processor } from "../../../sdk/assemblyscript/sluice";
export {
  cabi_realloc, process, cabi_post_process, init, cabi_post_init,
} from "../../../sdk/assemblyscript/sluice";

let suffix: Uint8Array = new Uint8Array(0);

function upper(input: Event, out: Output): void {
  const payload = input.payload;
  for (let i = 0; i < payload.length; i++) {
    const c = payload[i];
    if (c >= 0x61 && c <= 0x7a) payload[i] = c - 0x20;
  }
  if (suffix.length > 0) {
    const joined = new Uint8Array(payload.length + suffix.length);
    joined.set(payload);
    joined.set(suffix, payload.length);
    input.payload = joined;
  }
  out.emit(input);
}

// Reads the configuration once, so a bad value stops the node before any event flows.
function setup(): string | null {
  const text = config("suffix");
  if (text === null) return null;
  if (text.includes("\n")) return "suffix: must be a single line";
  suffix = Uint8Array.wrap(String.UTF8.encode(text));
  log("upper-as: appending suffix \"" + text + "\"");
  return null;
}

processor(upper, setup);
