;; all_capabilities.wat - a core module that imports every capability function Sluice
;; provides, under the legacy names wit-component keeps, and logs each payload before
;; returning the event unchanged. examples/components.mk wraps it with jco against the
;; real world (wit/), so the component it makes declares every interface, resource and
;; type of wit/processor.wit that a processor can import: a component Sluice must accept.
;;
;; Memory map:
;;   16..27    the result area (12 bytes)
;;   32..47    the one event record returned (16 bytes)
;;   64..72    "component", the log context
;;   1024..    heap for cabi_realloc (reset after every call)
(module
  (import "wasi:logging/logging@0.1.0-draft" "log" (func $log (param i32 i32 i32 i32 i32)))
  (import "wasi:config/store@0.2.0-draft" "get" (func (param i32 i32 i32)))
  (import "wasi:config/store@0.2.0-draft" "get-all" (func (param i32)))
  (import "wasi:keyvalue/store@0.2.0-draft2" "open" (func (param i32 i32 i32)))
  (import "wasi:keyvalue/store@0.2.0-draft2" "[method]bucket.get" (func (param i32 i32 i32 i32)))
  (import "wasi:keyvalue/store@0.2.0-draft2" "[method]bucket.set"
    (func (param i32 i32 i32 i32 i32 i32)))
  (import "wasi:keyvalue/store@0.2.0-draft2" "[method]bucket.delete"
    (func (param i32 i32 i32 i32)))
  (import "wasi:keyvalue/store@0.2.0-draft2" "[method]bucket.exists"
    (func (param i32 i32 i32 i32)))
  (import "wasi:keyvalue/store@0.2.0-draft2" "[method]bucket.list-keys"
    (func (param i32 i32 i32 i32 i32)))
  (import "wasi:keyvalue/store@0.2.0-draft2" "[resource-drop]bucket" (func (param i32)))
  (import "wasi:keyvalue/atomics@0.2.0-draft2" "increment" (func (param i32 i32 i32 i64 i32)))
  (import "sluice:processor/outgoing-http@0.1.0" "send"
    (func (param i32 i32 i32 i32 i32 i32 i32 i32 i32)))

  (memory (export "memory") 1)
  (data (i32.const 64) "component")
  (global $heap (mut i32) (i32.const 1024))

  ;; Bump allocator; cabi_post_* drops everything once the host has copied results out.
  (func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32)
    (local $ptr i32)
    (local.set $ptr (i32.and (i32.add (global.get $heap) (i32.sub (local.get 2) (i32.const 1)))
                             (i32.sub (i32.const 0) (local.get 2))))
    (global.set $heap (i32.add (local.get $ptr) (local.get 3)))
    (if (i32.gt_u (global.get $heap) (i32.shl (memory.size) (i32.const 16)))
      (then unreachable))
    (local.get $ptr))

  ;; init(config) -> result<_, string>: ok.
  (func (export "init") (param i32 i32) (result i32)
    (i32.store8 (i32.const 16) (i32.const 0))
    (i32.const 16))

  ;; process(event) -> result<list<event>, string>: logs the payload at info, returns the
  ;; event as it came.
  (func (export "process") (param $payload i32) (param $len i32) (param $meta i32) (param $count i32)
        (result i32)
    (call $log (i32.const 2) (i32.const 64) (i32.const 9) (local.get $payload) (local.get $len))
    (i32.store offset=0 (i32.const 32) (local.get $payload))
    (i32.store offset=4 (i32.const 32) (local.get $len))
    (i32.store offset=8 (i32.const 32) (local.get $meta))
    (i32.store offset=12 (i32.const 32) (local.get $count))
    (i32.store8 offset=0 (i32.const 16) (i32.const 0))
    (i32.store offset=4 (i32.const 16) (i32.const 32))
    (i32.store offset=8 (i32.const 16) (i32.const 1))
    (i32.const 16))

  (func (export "cabi_post_process") (param i32) (global.set $heap (i32.const 1024)))
  (func (export "cabi_post_init") (param i32) (global.set $heap (i32.const 1024)))
)
