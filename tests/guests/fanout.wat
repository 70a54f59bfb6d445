;; fanout.wat - one input event becomes N events.
;;
;; The payload is a decimal number N ("10000"); the result is N events that all point at
;; the input's payload bytes and carry no metadata. N = 0 returns an empty ok list, and a
;; payload that is not all digits returns err "not a number". The engine tests use it for
;; fan-out (large result lists, empty results) and the benchmarks for batch throughput.
;;
;; Memory map (shared by the hand-written test guests):
;;   16..27    the result area (12 bytes)
;;   32..47    the one event record returned (16 bytes)
;;   48..63    scratch: decimal numbers, one metadata pair
;;   256..     constant strings, one 32-byte slot each
;;   4096..    heap for cabi_realloc
(module
  (memory (export "memory") 1)

  (data (i32.const 256) "not a number")
  (data (i32.const 288) "too many events")

  ;; Bump allocator. Blocks are never freed one by one; where the module exports
  ;; cabi_post_process, that drops them all at once after the host has copied the result.
  (global $heap_base i32 (i32.const 4096))
  (global $heap (mut i32) (i32.const 4096))

  (func $realloc (export "cabi_realloc")
        (param $old i32) (param $old_size i32) (param $align i32) (param $size i32)
        (result i32)
    (local $ptr i32) (local $end i64) (local $have i64)
    ;; Round the heap pointer up to $align, a power of two.
    (local.set $ptr
      (i32.and (i32.add (global.get $heap) (i32.sub (local.get $align) (i32.const 1)))
               (i32.sub (i32.const 0) (local.get $align))))
    ;; Work in 64 bits so that a huge request cannot wrap around.
    (local.set $end (i64.add (i64.extend_i32_u (local.get $ptr))
                             (i64.extend_i32_u (local.get $size))))
    (local.set $have (i64.shl (i64.extend_i32_u (memory.size)) (i64.const 16)))
    (if (i64.gt_u (local.get $end) (local.get $have))
      (then
        ;; Grow by the missing whole pages; failing to get them is an allocator abort.
        (if (i32.eq (memory.grow (i32.wrap_i64 (i64.shr_u
                      (i64.add (i64.sub (local.get $end) (local.get $have)) (i64.const 0xffff))
                      (i64.const 16))))
                    (i32.const -1))
          (then unreachable))))
    ;; A real reallocation keeps the old contents.
    (if (local.get $old)
      (then (memory.copy (local.get $ptr) (local.get $old)
              (select (local.get $size) (local.get $old_size)
                      (i32.lt_u (local.get $size) (local.get $old_size))))))
    (global.set $heap (i32.wrap_i64 (local.get $end)))
    (local.get $ptr))

  (func (export "process")
        (param $payload i32) (param $payload_len i32) (param $meta i32) (param $meta_count i32)
        (result i32)
    (local $n i32) (local $i i32) (local $digit i32) (local $events i32)
    (if (i32.eqz (local.get $payload_len))
      (then (return (call $err (i32.const 256) (i32.const 12)))))
    ;; Parse N, refusing more than 2^27 events (their list alone would take 2 GiB).
    (loop $parse
      (local.set $digit
        (i32.sub (i32.load8_u (i32.add (local.get $payload) (local.get $i))) (i32.const 48)))
      (if (i32.gt_u (local.get $digit) (i32.const 9))
        (then (return (call $err (i32.const 256) (i32.const 12)))))
      (if (i32.gt_u (local.get $n) (i32.const 0x1000000))
        (then (return (call $err (i32.const 288) (i32.const 15)))))
      (local.set $n (i32.add (i32.mul (local.get $n) (i32.const 10)) (local.get $digit)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $parse (i32.lt_u (local.get $i) (local.get $payload_len))))
    (if (i32.gt_u (local.get $n) (i32.const 0x8000000))
      (then (return (call $err (i32.const 288) (i32.const 15)))))
    ;; N events of 16 bytes, each the input payload with no metadata.
    (local.set $events (call $realloc (i32.const 0) (i32.const 0) (i32.const 4)
                             (i32.shl (local.get $n) (i32.const 4))))
    (local.set $i (i32.const 0))
    (block $done
      (loop $fill
        (br_if $done (i32.eq (local.get $i) (local.get $n)))
        (i32.store offset=0 (local.get $events) (local.get $payload))
        (i32.store offset=4 (local.get $events) (local.get $payload_len))
        (i32.store offset=8 (local.get $events) (i32.const 0))
        (i32.store offset=12 (local.get $events) (i32.const 0))
        (local.set $events (i32.add (local.get $events) (i32.const 16)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $fill)))
    (call $ok_list (i32.sub (local.get $events) (i32.shl (local.get $n) (i32.const 4)))
                   (local.get $n)))

  ;; Fills the static result area with ok(list) and returns its address.
  (func $ok_list (param $events i32) (param $count i32) (result i32)
    (i32.store8 offset=0 (i32.const 16) (i32.const 0))
    (i32.store offset=4 (i32.const 16) (local.get $events))
    (i32.store offset=8 (i32.const 16) (local.get $count))
    (i32.const 16))

  ;; Fills the static result area with err(string) and returns its address.
  (func $err (param $msg i32) (param $msg_len i32) (result i32)
    (i32.store8 offset=0 (i32.const 16) (i32.const 1))
    (i32.store offset=4 (i32.const 16) (local.get $msg))
    (i32.store offset=8 (i32.const 16) (local.get $msg_len))
    (i32.const 16))

  ;; The host has copied the result out: everything allocated since the last call is free.
  (func (export "cabi_post_process") (param $result i32)
    (global.set $heap (global.get $heap_base)))
)
