;; leak.wat - leaks 1 MiB of memory on every call.
;;
;; Each process call grows memory by 16 pages, writes into each of them so they are really
;; in use, and returns one event whose payload is the number of pages memory now has, in
;; decimal. When memory cannot grow it returns err "memory.grow failed". The engine tests
;; use it to check that an instance above the memory high-water mark is recycled (the page
;; count drops back). It exports no cabi_post_process, which that export being optional
;; also needs a test of.
;;
;; Memory map (shared by the hand-written test guests):
;;   16..27    the result area (12 bytes)
;;   32..47    the one event record returned (16 bytes)
;;   48..63    scratch: decimal numbers, one metadata pair
;;   256..     constant strings, one 32-byte slot each
;;   4096..    heap for cabi_realloc
(module
  (memory (export "memory") 1)

  (data (i32.const 256) "memory.grow failed")

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
    (local $page i32) (local $end i32)
    (local.set $page (memory.grow (i32.const 16)))
    (if (i32.eq (local.get $page) (i32.const -1))
      (then (return (call $err (i32.const 256) (i32.const 18)))))
    ;; Touch one byte in each new page.
    (local.set $end (i32.add (local.get $page) (i32.const 16)))
    (loop $touch
      (i32.store8 (i32.shl (local.get $page) (i32.const 16)) (i32.const 1))
      (local.set $page (i32.add (local.get $page) (i32.const 1)))
      (br_if $touch (i32.lt_u (local.get $page) (local.get $end))))
    (call $ok_one (i32.const 48) (call $utoa (memory.size) (i32.const 48))
                  (i32.const 0) (i32.const 0)))

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

  ;; Fills the static result area with err(string) and returns its address.
  (func $err (param $msg i32) (param $msg_len i32) (result i32)
    (i32.store8 offset=0 (i32.const 16) (i32.const 1))
    (i32.store offset=4 (i32.const 16) (local.get $msg))
    (i32.store offset=8 (i32.const 16) (local.get $msg_len))
    (i32.const 16))
)
