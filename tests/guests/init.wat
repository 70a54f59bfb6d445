;; init.wat - a processor with an init export that keeps its configuration.
;;
;; init stores the config pairs it is given. If one has the key "fail" it returns err
;; "init refused: " followed by that pair's value, else ok. process then returns one event
;; per config pair, whose payload is "key=value", with no metadata (none at all when init
;; was never called). The engine tests use it for config passing and init failures.
;;
;; Memory map (shared by the hand-written test guests):
;;   16..27    the result area (12 bytes)
;;   32..47    the one event record returned (16 bytes)
;;   48..63    scratch: decimal numbers, one metadata pair
;;   256..     constant strings, one 32-byte slot each
;;   4096..    heap for cabi_realloc
(module
  (memory (export "memory") 1)

  (data (i32.const 256) "fail")
  (data (i32.const 288) "init refused: ")

  ;; The config pairs as the host lowered them; init makes that memory permanent.
  (global $config (mut i32) (i32.const 0))
  (global $config_count (mut i32) (i32.const 0))

  ;; Bump allocator. Blocks are never freed one by one; where the module exports
  ;; cabi_post_process, that drops them all at once after the host has copied the result.
  (global $heap_base (mut i32) (i32.const 4096))
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

  (func (export "init") (param $pairs i32) (param $count i32) (result i32)
    (local $i i32) (local $pair i32) (local $msg i32) (local $value_len i32)
    (global.set $config (local.get $pairs))
    (global.set $config_count (local.get $count))
    ;; Keep everything allocated so far, the config included, for the instance's life.
    (global.set $heap_base (global.get $heap))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $count)))
        (local.set $pair (i32.add (local.get $pairs) (i32.shl (local.get $i) (i32.const 4))))
        (if (call $bytes_eq (i32.load offset=0 (local.get $pair))
                            (i32.load offset=4 (local.get $pair))
                            (i32.const 256) (i32.const 4))
          (then
            (local.set $value_len (i32.load offset=12 (local.get $pair)))
            (local.set $msg (call $realloc (i32.const 0) (i32.const 0) (i32.const 1)
                                  (i32.add (i32.const 14) (local.get $value_len))))
            (memory.copy (local.get $msg) (i32.const 288) (i32.const 14))
            (memory.copy (i32.add (local.get $msg) (i32.const 14))
                         (i32.load offset=8 (local.get $pair)) (local.get $value_len))
            (return (call $err (local.get $msg) (i32.add (i32.const 14) (local.get $value_len))))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next)))
    ;; result<_, string>: ok.
    (i32.store8 (i32.const 16) (i32.const 0))
    (i32.const 16))

  (func (export "cabi_post_init") (param $result i32))

  (func (export "process")
        (param $payload i32) (param $payload_len i32) (param $meta i32) (param $meta_count i32)
        (result i32)
    (local $events i32) (local $i i32) (local $pair i32) (local $event i32)
    (local $key_len i32) (local $value_len i32) (local $line i32)
    (local.set $events (call $realloc (i32.const 0) (i32.const 0) (i32.const 4)
                             (i32.shl (global.get $config_count) (i32.const 4))))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (global.get $config_count)))
        (local.set $pair (i32.add (global.get $config) (i32.shl (local.get $i) (i32.const 4))))
        (local.set $event (i32.add (local.get $events) (i32.shl (local.get $i) (i32.const 4))))
        (local.set $key_len (i32.load offset=4 (local.get $pair)))
        (local.set $value_len (i32.load offset=12 (local.get $pair)))
        ;; "key=value"
        (local.set $line (call $realloc (i32.const 0) (i32.const 0) (i32.const 1)
                               (i32.add (i32.add (local.get $key_len) (local.get $value_len))
                                        (i32.const 1))))
        (memory.copy (local.get $line) (i32.load offset=0 (local.get $pair)) (local.get $key_len))
        (i32.store8 (i32.add (local.get $line) (local.get $key_len)) (i32.const 61 (; '=' ;)))
        (memory.copy (i32.add (i32.add (local.get $line) (local.get $key_len)) (i32.const 1))
                     (i32.load offset=8 (local.get $pair)) (local.get $value_len))
        (i32.store offset=0 (local.get $event) (local.get $line))
        (i32.store offset=4 (local.get $event)
                   (i32.add (i32.add (local.get $key_len) (local.get $value_len)) (i32.const 1)))
        (i32.store offset=8 (local.get $event) (i32.const 0))
        (i32.store offset=12 (local.get $event) (i32.const 0))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next)))
    (call $ok_list (local.get $events) (global.get $config_count)))

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
