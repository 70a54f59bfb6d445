;; traps.wat - traps on demand, one way per payload.
;;
;; The payload names what to do, by exact text:
;;   unreachable    executes `unreachable`
;;   oob            i32.load at 0xFFFFFFF0
;;   div0           i32.div_s by zero
;;   overflow       i32.div_s of INT32_MIN by -1
;;   conversion     i32.trunc_f32_s of NaN
;;   indirect-null  call_indirect through a null table slot
;;   indirect-type  call_indirect to a function of another signature
;;   stack          unbounded, non-tail recursion
;;   loop           `loop br 0 end`, forever
;;   bomb           memory.grow 1 page at a time until refused, writing into each page,
;;                  then ok with the number of pages obtained as payload
;;   bomb-trap      the same, then `unreachable` (an allocator's abort)
;;   grow-big       one memory.grow of 65536 pages (4 GiB): ok "denied" or "granted"
;; and anything else returns ok with the payload, so a test can check that the instance (or
;; its replacement) still works after a trap. The engine tests use it for trap reporting,
;; the watchdog, the stack limit and the memory limit.
;;
;; Operands come from mutable globals and results go to one, so that the C compiler that
;; builds the wasm2c output cannot fold a trap away or drop an unused load.
;;
;; Memory map (shared by the hand-written test guests):
;;   16..27    the result area (12 bytes)
;;   32..47    the one event record returned (16 bytes)
;;   48..63    scratch: decimal numbers, one metadata pair
;;   256..     constant strings, one 32-byte slot each
;;   4096..    heap for cabi_realloc
(module
  (type $no_args (func (result i32)))
  (memory (export "memory") 1)

  (data (i32.const 256) "unreachable")
  (data (i32.const 288) "oob")
  (data (i32.const 320) "div0")
  (data (i32.const 352) "overflow")
  (data (i32.const 384) "conversion")
  (data (i32.const 416) "indirect-null")
  (data (i32.const 448) "indirect-type")
  (data (i32.const 480) "stack")
  (data (i32.const 512) "loop")
  (data (i32.const 544) "bomb")
  (data (i32.const 576) "bomb-trap")
  (data (i32.const 608) "grow-big")
  (data (i32.const 640) "denied")
  (data (i32.const 672) "granted")

  (global $zero (mut i32) (i32.const 0))
  (global $minus_one (mut i32) (i32.const -1))
  (global $int_min (mut i32) (i32.const 0x80000000))
  (global $nan (mut f32) (f32.const nan))
  (global $sink (mut i32) (i32.const 0))

  ;; Slot 0 stays null; slot 1 holds a function that is not a $no_args.
  (table 2 funcref)
  (elem (i32.const 1) $takes_i64)
  (func $takes_i64 (param $x i64) (result i64) (local.get $x))

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
    (local $pages i32)
    (global.set $in (local.get $payload))
    (global.set $in_len (local.get $payload_len))
    (if (call $payload_is (i32.const 256) (i32.const 11))
      (then unreachable))
    (if (call $payload_is (i32.const 288) (i32.const 3))
      (then (global.set $sink (i32.load (i32.const 0xFFFFFFF0)))))
    (if (call $payload_is (i32.const 320) (i32.const 4))
      (then (global.set $sink (i32.div_s (local.get $payload_len) (global.get $zero)))))
    (if (call $payload_is (i32.const 352) (i32.const 8))
      (then (global.set $sink (i32.div_s (global.get $int_min) (global.get $minus_one)))))
    (if (call $payload_is (i32.const 384) (i32.const 10))
      (then (global.set $sink (i32.trunc_f32_s (global.get $nan)))))
    (if (call $payload_is (i32.const 416) (i32.const 13))
      (then (global.set $sink (call_indirect (type $no_args) (global.get $zero)))))
    (if (call $payload_is (i32.const 448) (i32.const 13))
      (then (global.set $sink (call_indirect (type $no_args)
                                (i32.sub (global.get $zero) (global.get $minus_one))))))
    (if (call $payload_is (i32.const 480) (i32.const 5))
      (then (global.set $sink (call $recurse (i32.const 0)))))
    (if (call $payload_is (i32.const 512) (i32.const 4))
      (then (loop $forever (br $forever))))
    (if (call $payload_is (i32.const 544) (i32.const 4))
      (then
        (local.set $pages (call $bomb))
        (return (call $ok_one (i32.const 48) (call $utoa (local.get $pages) (i32.const 48))
                              (i32.const 0) (i32.const 0)))))
    (if (call $payload_is (i32.const 576) (i32.const 9))
      (then (drop (call $bomb)) unreachable))
    (if (call $payload_is (i32.const 608) (i32.const 8))
      (then
        (if (i32.eq (memory.grow (i32.const 65536)) (i32.const -1))
          (then (return (call $ok_one (i32.const 640) (i32.const 6) (i32.const 0) (i32.const 0)))))
        (return (call $ok_one (i32.const 672) (i32.const 7) (i32.const 0) (i32.const 0)))))
    (call $ok_one (local.get $payload) (local.get $payload_len) (i32.const 0) (i32.const 0)))

  ;; Recurses until the stack runs out. Each level stores its depth and reads the slot back
  ;; after the call, so the call is not in tail position and cannot become a loop.
  (func $recurse (param $depth i32) (result i32)
    (i32.store (i32.const 48) (local.get $depth))
    (i32.xor (call $recurse (i32.add (local.get $depth) (i32.const 1)))
             (i32.load (i32.const 48))))

  ;; Grows memory one page at a time until refused, writing a byte into each new page;
  ;; returns how many pages it obtained.
  (func $bomb (result i32)
    (local $pages i32) (local $page i32)
    (block $refused
      (loop $more
        (local.set $page (memory.grow (i32.const 1)))
        (br_if $refused (i32.eq (local.get $page) (i32.const -1)))
        (i32.store8 (i32.shl (local.get $page) (i32.const 16)) (i32.const 1))
        (local.set $pages (i32.add (local.get $pages) (i32.const 1)))
        (br $more)))
    (local.get $pages))

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

  ;; Writes $n in decimal at $dst and returns the number of digits written.
  (func $utoa (param $n i32) (param $dst i32) (result i32)
    (local $len i32) (local $rest i32)
    (local.set $rest (local.get $n))
    (loop $count
      (local.set $len (i32.add (local.get $len) (i32.const 1)))
      (local.set $rest (i32.div_u (local.get $rest) (i32.const 10)))
      (br_if $count (local.get $rest)))
    ;; Digits go in from the last one.
    (local.set $rest (local.get $len))
    (loop $write
      (local.set $rest (i32.sub (local.get $rest) (i32.const 1)))
      (i32.store8 (i32.add (local.get $dst) (local.get $rest))
                  (i32.add (i32.const 48 (; '0' ;)) (i32.rem_u (local.get $n) (i32.const 10))))
      (local.set $n (i32.div_u (local.get $n) (i32.const 10)))
      (br_if $write (local.get $rest)))
    (local.get $len))

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

  ;; The host has copied the result out: everything allocated since the last call is free.
  (func (export "cabi_post_process") (param $result i32)
    (global.set $heap (global.get $heap_base)))
)
