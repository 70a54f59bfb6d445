// hello.ts - greets each event and logs it through wasi:logging, in AssemblyScript:
// the payload `ann` becomes `hello, ann`, and the log gets the line
// `[NODE] info: hello-log: greeted ann`. The greeting is read once, in init, through
// wasi:config (the node's `config` map). The output keeps the input's metadata.
//
// config:  greeting   the word to greet with (default `hello`)
//
// Logging and config are always granted: the node needs no `capabilities:` entry. Lines
// at debug level (one per event, with the payload's size) appear only with
// `capabilities: {logging: {level: debug}}`.
//
//     printf 'ann\n' | sluice run examples/pipelines/hello-log.yaml
//     hi, ann                                   (stdout)
//     [greet] info: hello-log: greeted ann      (stderr)

import { Event, Output, logging, processor, wasiConfig } from "../../../sdk/assemblyscript/sluice";
export {
  cabi_realloc, process, cabi_post_process, init, cabi_post_init,
} from "../../../sdk/assemblyscript/sluice";

let greeting = "hello";

function hello(input: Event, out: Output): void {
  const name = input.payloadString().trim();
  logging.debug("hello-log", "payload of " + input.payload.length.toString() + " bytes");
  logging.info("hello-log", "greeted " + name);
  out.emit(input.withPayload(Uint8Array.wrap(String.UTF8.encode(greeting + ", " + name))));
}

function setup(): string | null {
  const configured = wasiConfig("greeting");
  if (configured !== null) {
    if (configured.length == 0) return "greeting: must not be empty (leave it out for `hello`)";
    greeting = configured;
  }
  logging.info("hello-log", "greeting with \"" + greeting + "\"");
  return null;
}

processor(hello, setup);
