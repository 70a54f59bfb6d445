;; passthrough.wat - returns the input event unchanged, for the per-event overhead and
;; instantiation benchmarks.
;;
;; The returned event points straight at the payload and metadata the host lowered into
;; this instance's memory: the guest copies nothing, so what is measured is the engine's
;; own cost per event (lowering, the call and its guard, lifting).
;;
;; Memory map: 16..27 the result area, 32..47 the returned event record, 1024.. the heap
;; that cabi_realloc hands out and cabi_post_process resets after every call.
(module
  (memory (export "memory") 1)
  (global $heap (mut i32) (i32.const 1024))

  (func (export "cabi_realloc")
        (param $old i32) (param $old_size i32) (param $align i32) (param $size i32)
        (result i32)
    (local $ptr i32) (local $end i64)
    ;; Round up to $align (a power of two); compute the end in 64 bits so it cannot wrap.
    (local.set $ptr
      (i32.and (i32.add (global.get $heap) (i32.sub (local.get $align) (i32.const 1)))
               (i32.sub (i32.const 0) (local.get $align))))
    (local.set $end (i64.add (i64.extend_i32_u (local.get $ptr))
                             (i64.extend_i32_u (local.get $size))))
    ;; One page is plenty for the benchmark's events; anything larger is refused (null),
    ;; which the host reports as out of memory.
    (if (i64.gt_u (local.get $end) (i64.const 65536)) (then (return (i32.const 0))))
    (if (local.get $old)
      (then (memory.copy (local.get $ptr) (local.get $old)
              (select (local.get $size) (local.get $old_size)
                      (i32.lt_u (local.get $size) (local.get $old_size))))))
    (global.set $heap (i32.wrap_i64 (local.get $end)))
    (local.get $ptr))

  (func (export "process")
        (param $payload i32) (param $payload_len i32) (param $meta i32) (param $meta_count i32)
        (result i32)
    (i32.store offset=0 (i32.const 32) (local.get $payload))
    (i32.store offset=4 (i32.const 32) (local.get $payload_len))
    (i32.store offset=8 (i32.const 32) (local.get $meta))
    (i32.store offset=12 (i32.const 32) (local.get $meta_count))
    ;; ok(list of one event)
    (i32.store8 offset=0 (i32.const 16) (i32.const 0))
    (i32.store offset=4 (i32.const 16) (i32.const 32))
    (i32.store offset=8 (i32.const 16) (i32.const 1))
    (i32.const 16))

  (func (export "cabi_post_process") (param $result i32)
    (global.set $heap (i32.const 1024)))
)
