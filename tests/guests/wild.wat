;; wild.wat - returns malformed results on demand, one way per payload.
;;
;; The payload names the defect, by exact text:
;;   result-oob            result pointer 0xFFFFFFF8
;;   result-unaligned      a well-formed result area at an address that is not 4-aligned
;;   bad-disc              discriminant 7
;;   list-oob              ok list at 0xFFFFFF00, length 1
;;   list-overflow         ok list length 0x7FFFFFFF (length * 16 overflows 32 bits)
;;   absurd-count          ok list length 0x10000000 (length * 16 is exactly 2^32)
;;   payload-oob           one event whose payload is 0x100 bytes at 0xFFFFFFF0
;;   payload-len-overflow  one event whose payload is 0xFFFFFFFF bytes at 16
;;   meta-oob              one event whose metadata is 1 pair at 0xFFFFFFF0
;;   meta-string-oob       one metadata pair whose key is 0x200 bytes at 0xFFFFFF00
;;   meta-bad-utf8         one metadata pair whose key holds the bytes FF FE
;;   err-oob               err string of 100 bytes at 0xFFFFFFF0
;;   err-bad-utf8          err string holding the bytes C3 28 (invalid UTF-8)
;; and anything else is echoed back, so a test can check the instance still works. The
;; engine tests use it to check that the host validates everything it lifts and turns
;; each defect into an error status, never a crash or a read outside guest memory.
;;
;; Memory map (shared by the hand-written test guests):
;;   16..27    the result area (12 bytes)
;;   32..47    the one event record returned (16 bytes)
;;   48..63    scratch: decimal numbers, one metadata pair
;;   256..     constant strings, one 32-byte slot each
;;   4096..    heap for cabi_realloc
(module
  (memory (export "memory") 1)

  (data (i32.const 256) "result-oob")
  (data (i32.const 288) "result-unaligned")
  (data (i32.const 320) "bad-disc")
  (data (i32.const 352) "list-oob")
  (data (i32.const 384) "list-overflow")
  (data (i32.const 416) "absurd-count")
  (data (i32.const 448) "payload-oob")
  (data (i32.const 480) "payload-len-overflow")
  (data (i32.const 512) "meta-oob")
  (data (i32.const 544) "meta-string-oob")
  (data (i32.const 576) "meta-bad-utf8")
  (data (i32.const 608) "err-oob")
  (data (i32.const 640) "err-bad-utf8")
  (data (i32.const 672) "value")
  (data (i32.const 704) "k\ff\fe")
  (data (i32.const 736) "\c3\28")

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

  ;; The payload of the call in progress, which $payload_is compares.
  (global $in (mut i32) (i32.const 0))
  (global $in_len (mut i32) (i32.const 0))

  ;; 1 when the payload is exactly the $want_len bytes at $want.
  (func $payload_is (param $want i32) (param $want_len i32) (result i32)
    (call $bytes_eq (global.get $in) (global.get $in_len) (local.get $want) (local.get $want_len)))

  (func (export "process")
        (param $payload i32) (param $payload_len i32) (param $meta i32) (param $meta_count i32)
        (result i32)
    (global.set $in (local.get $payload))
    (global.set $in_len (local.get $payload_len))
    ;; Most defects start from a well-formed echo result and then break one field.
    (drop (call $ok_one (local.get $payload) (local.get $payload_len)
                        (local.get $meta) (local.get $meta_count)))
    (if (call $payload_is (i32.const 256) (i32.const 10))
      (then (return (i32.const 0xFFFFFFF8))))
    (if (call $payload_is (i32.const 288) (i32.const 16))
      (then
        ;; Move the result area to 17..28: it still points at the event at 32.
        (memory.copy (i32.const 17) (i32.const 16) (i32.const 12))
        (return (i32.const 17))))
    (if (call $payload_is (i32.const 320) (i32.const 8))
      (then (i32.store8 offset=0 (i32.const 16) (i32.const 7))))
    (if (call $payload_is (i32.const 352) (i32.const 8))
      (then (i32.store offset=4 (i32.const 16) (i32.const 0xFFFFFF00))))
    (if (call $payload_is (i32.const 384) (i32.const 13))
      (then (i32.store offset=8 (i32.const 16) (i32.const 0x7FFFFFFF))))
    (if (call $payload_is (i32.const 416) (i32.const 12))
      (then (i32.store offset=8 (i32.const 16) (i32.const 0x10000000))))
    (if (call $payload_is (i32.const 448) (i32.const 11))
      (then
        (i32.store offset=0 (i32.const 32) (i32.const 0xFFFFFFF0))
        (i32.store offset=4 (i32.const 32) (i32.const 0x100))))
    (if (call $payload_is (i32.const 480) (i32.const 20))
      (then
        (i32.store offset=0 (i32.const 32) (i32.const 16))
        (i32.store offset=4 (i32.const 32) (i32.const 0xFFFFFFFF))))
    (if (call $payload_is (i32.const 512) (i32.const 8))
      (then
        (i32.store offset=8 (i32.const 32) (i32.const 0xFFFFFFF0))
        (i32.store offset=12 (i32.const 32) (i32.const 1))))
    (if (call $payload_is (i32.const 544) (i32.const 15))
      (then (call $one_pair (i32.const 0xFFFFFF00) (i32.const 0x200))))
    (if (call $payload_is (i32.const 576) (i32.const 13))
      (then (call $one_pair (i32.const 704) (i32.const 3))))
    (if (call $payload_is (i32.const 608) (i32.const 7))
      (then (return (call $err (i32.const 0xFFFFFFF0) (i32.const 100)))))
    (if (call $payload_is (i32.const 640) (i32.const 12))
      (then (return (call $err (i32.const 736) (i32.const 2)))))
    (i32.const 16))

  ;; Gives the event at 32 one metadata pair: the given key, and the value "value".
  (func $one_pair (param $key i32) (param $key_len i32)
    (i32.store offset=0 (i32.const 48) (local.get $key))
    (i32.store offset=4 (i32.const 48) (local.get $key_len))
    (i32.store offset=8 (i32.const 48) (i32.const 672))
    (i32.store offset=12 (i32.const 48) (i32.const 5))
    (i32.store offset=8 (i32.const 32) (i32.const 48))
    (i32.store offset=12 (i32.const 32) (i32.const 1)))

  ;; 1 when the $len bytes at $a are exactly the $want_len bytes at $want.
  (func $bytes_eq (param $a i32) (param $len i32) (param $want i32) (param $want_len i32)
        (result i32)
    (if (i32.ne (local.get $len) (local.get $want_len)) (then (return (i32.const 0))))
    (loop $next
      (if (i32.eqz (local.get $len)) (then (return (i32.const 1))))
      (local.set $len (i32.sub (local.get $len) (i32.const 1)))
      (br_if $next (i32.eq (i32.load8_u (i32.add (local.get $a) (local.get $len)))
                           (i32.load8_u (i32.add (local.get $want) (local.get $len))))))
    (i32.const 0))

  ;; Fills the static result area with ok([one event]) and returns its address.
  (func $ok_one
        (param $payload i32) (param $payload_len i32) (param $meta i32) (param $meta_count i32)
        (result i32)
    (i32.store offset=0 (i32.const 32) (local.get $payload))
    (i32.store offset=4 (i32.const 32) (local.get $payload_len))
    (i32.store offset=8 (i32.const 32) (local.get $meta))
    (i32.store offset=12 (i32.const 32) (local.get $meta_count))
    (call $ok_list (i32.const 32) (i32.const 1)))

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
