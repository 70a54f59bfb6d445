;; bad_realloc.wat - a cabi_realloc that hands out memory the guest does not have.
;;
;; cabi_realloc always returns 0xFFFFFFF0, where not even one 16-byte block fits in memory;
;; process would echo. The engine tests use it to check that the host refuses the pointer
;; (an error status for the event) before it writes a single byte of the input.
;;
(module
  (memory (export "memory") 1)

  (func (export "cabi_realloc")
        (param $old i32) (param $old_size i32) (param $align i32) (param $size i32)
        (result i32)
    (i32.const 0xFFFFFFF0))

  (func (export "process")
        (param $payload i32) (param $payload_len i32) (param $meta i32) (param $meta_count i32)
        (result i32)
    (i32.store offset=0 (i32.const 32) (local.get $payload))
    (i32.store offset=4 (i32.const 32) (local.get $payload_len))
    (i32.store offset=8 (i32.const 32) (local.get $meta))
    (i32.store offset=12 (i32.const 32) (local.get $meta_count))
    (i32.store8 offset=0 (i32.const 16) (i32.const 0))
    (i32.store offset=4 (i32.const 16) (i32.const 32))
    (i32.store offset=8 (i32.const 16) (i32.const 1))
    (i32.const 16))
)
