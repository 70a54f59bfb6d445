//! sluice.rs - write a Sluice processor in Rust: this one file, no crates, no cargo.
//!
//! ```ignore
//! #[path = "sluice.rs"]
//! mod sluice;
//! use sluice::Event;
//!
//! fn upper(mut input: Event) -> Result<Vec<Event>, String> {
//!     input.payload.make_ascii_uppercase();
//!     Ok(vec![input])
//! }
//! sluice::processor!(upper);
//! ```
//!
//! ```text
//! rustc --target wasm32-unknown-unknown --crate-type cdylib -O -C strip=debuginfo upper.rs
//! ```
//!
//! The module must be declared at the crate root under the name `sluice` (the macro
//! refers to `crate::sluice`). Rust 1.63 or later, target `wasm32-unknown-unknown`.
//!
//! A processor is a function `fn(Event) -> Result<Vec<Event>, String>`: it owns the input
//! event, and returns zero events (drop), one (transform) or many (fan-out), or an error
//! message (the input then goes to the node's `.errors` output). Returning the input
//! itself, changed in place or not, copies nothing. An optional init function
//! `fn() -> Result<(), String>` runs once per instance, before the first event, and may
//! refuse the node's configuration; `sluice::config(key)` reads it, in init and later.
//!
//! Memory: the SDK takes ownership of the host's copy of the input (the canonical ABI's
//! `cabi_realloc` allocations) and frees it when the input event is dropped; it keeps the
//! returned events alive until the host has copied them (`cabi_post_process`), then drops
//! them. Nothing accumulates between events. A panic traps: the host fails that event and
//! replaces the instance; the panic message goes to the host log first.
//!
//! This file implements the canonical-ABI lowering of the world in wit/processor.wit:
//! `memory` (from the linker), `cabi_realloc`, `process`, `cabi_post_process`, `init`,
//! `cabi_post_init`. The only import is `wasi_snapshot_preview1.fd_write`, for logging.

#![allow(dead_code)]

use std::alloc::{self, Layout};
use std::ptr::{self, addr_of_mut};

// ---- the API -------------------------------------------------------------------------

/// One record: payload bytes plus ordered metadata (duplicate keys are possible).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Event {
    pub payload: Vec<u8>,
    pub metadata: Vec<(String, String)>,
}

/// What a processor returns.
pub type Output = Result<Vec<Event>, String>;

impl Event {
    /// An event with `payload` and no metadata.
    pub fn new(payload: impl Into<Vec<u8>>) -> Event {
        Event { payload: payload.into(), metadata: Vec::new() }
    }

    /// A new event with `payload` and a copy of this event's metadata: what a transform
    /// that builds a new payload usually wants.
    pub fn with_payload(&self, payload: impl Into<Vec<u8>>) -> Event {
        Event { payload: payload.into(), metadata: self.metadata.clone() }
    }

    /// The payload as text, if it is valid UTF-8.
    pub fn payload_str(&self) -> Option<&str> {
        std::str::from_utf8(&self.payload).ok()
    }

    /// The value of the first metadata pair with key `key`.
    pub fn meta(&self, key: &str) -> Option<&str> {
        self.metadata.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    /// Replaces the first pair with key `key`, or appends one.
    pub fn set_meta(&mut self, key: impl Into<String>, value: impl Into<String>) {
        let key = key.into();
        let value = value.into();
        match self.metadata.iter_mut().find(|(k, _)| *k == key) {
            Some(pair) => pair.1 = value,
            None => self.metadata.push((key, value)),
        }
    }

    /// Removes every pair with key `key`.
    pub fn remove_meta(&mut self, key: &str) {
        self.metadata.retain(|(k, _)| k != key);
    }
}

/// The value of configuration key `key` (the node's `config` map), valid for the life of
/// the instance; `None` when the key is not configured.
pub fn config(key: &str) -> Option<&'static str> {
    let pairs: &'static [(String, String)] = unsafe { CONFIG };
    pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

/// Every configuration pair, in the pipeline file's order.
pub fn config_pairs() -> &'static [(String, String)] {
    unsafe { CONFIG }
}

/// Writes one line to the host log (WASI stderr); the host tags it with the node id.
pub fn log(line: &str) {
    let mut text = Vec::with_capacity(line.len() + 1);
    text.extend_from_slice(line.as_bytes());
    text.push(b'\n');
    let mut rest: &[u8] = &text;
    while !rest.is_empty() {
        let iovec = Ciovec { ptr: rest.as_ptr(), len: rest.len() };
        let mut written: usize = 0;
        let errno = unsafe { fd_write(2, &iovec, 1, &mut written) };
        if errno != 0 || written == 0 {
            return;
        }
        rest = &rest[written.min(rest.len())..];
    }
}

/// Declares the processor: `processor!(process_fn)` or
/// `processor!(process_fn, init = init_fn)`. Use it once, at the crate root.
macro_rules! processor {
    ($process:path) => {
        $crate::sluice::processor!($process, init = $crate::sluice::accept_config);
    };
    ($process:path, init = $init:path) => {
        const _: () = {
            // Named apart from the export so a processor function may be called `process`.
            #[export_name = "process"]
            pub unsafe extern "C" fn __sluice_process(
                payload_ptr: *mut u8,
                payload_len: usize,
                meta_ptr: *mut u8,
                meta_len: usize,
            ) -> *const u8 {
                $crate::sluice::__process(payload_ptr, payload_len, meta_ptr, meta_len, $process)
            }

            #[export_name = "init"]
            pub unsafe extern "C" fn __sluice_init(
                config_ptr: *mut u8,
                config_len: usize,
            ) -> *const u8 {
                $crate::sluice::__init(config_ptr, config_len, $init)
            }
        };
    };
}
pub(crate) use processor;

/// The init function of processors that declare none: any configuration is accepted.
pub fn accept_config() -> Result<(), String> {
    Ok(())
}

// ---- the canonical ABI ---------------------------------------------------------------
//
// On wasm32 these `repr(C)` structs are exactly the ABI layouts: a `tuple<string,string>`
// and an `event` are 16 bytes, the `result<list<event>, string>` area is 12 bytes with
// the list or string at offset 4.

#[repr(C)]
struct RawMeta {
    key_ptr: *const u8,
    key_len: usize,
    value_ptr: *const u8,
    value_len: usize,
}

#[repr(C)]
struct RawEvent {
    payload_ptr: *const u8,
    payload_len: usize,
    meta_ptr: *const RawMeta,
    meta_len: usize,
}

#[repr(C)]
struct ResultArea {
    discriminant: u8, // 0 ok, 1 err
    ptr: *const u8,
    len: usize,
}

#[repr(C)]
struct Ciovec {
    ptr: *const u8,
    len: usize,
}

#[link(wasm_import_module = "wasi_snapshot_preview1")]
extern "C" {
    fn fd_write(fd: u32, iovs: *const Ciovec, iovs_len: usize, written: *mut usize) -> i32;
}

/// What the last call returned, kept alive until the host has copied it out.
struct Returned {
    events: Vec<Event>,
    records: Vec<RawEvent>,
    meta: Vec<RawMeta>,
    error: String,
    area: ResultArea,
}

static mut RETURNED: Returned = Returned {
    events: Vec::new(),
    records: Vec::new(),
    meta: Vec::new(),
    error: String::new(),
    area: ResultArea { discriminant: 0, ptr: ptr::null(), len: 0 },
};

/// The configuration, leaked on purpose: `config()` hands out `'static` borrows of it.
static mut CONFIG: &[(String, String)] = &[];

static mut PANIC_HOOK_SET: bool = false;

/// `cabi_realloc`: how the host allocates in guest memory. The allocations are ordinary
/// Rust allocations with the requested alignment, so lifted input takes them over.
#[no_mangle]
pub unsafe extern "C" fn cabi_realloc(
    old_ptr: *mut u8,
    old_size: usize,
    align: usize,
    new_size: usize,
) -> *mut u8 {
    if Layout::from_size_align(old_size.max(new_size), align).is_err() {
        std::process::abort(); // not a power-of-two alignment, or an impossible size
    }
    let layout = Layout::from_size_align_unchecked(old_size, align);
    let new_ptr = if old_size == 0 {
        if new_size == 0 {
            return align as *mut u8;
        }
        alloc::alloc(Layout::from_size_align_unchecked(new_size, align))
    } else if new_size == 0 {
        alloc::dealloc(old_ptr, layout);
        return align as *mut u8;
    } else {
        alloc::realloc(old_ptr, layout, new_size)
    };
    if new_ptr.is_null() {
        std::process::abort();
    }
    new_ptr
}

#[no_mangle]
pub unsafe extern "C" fn cabi_post_process(_result: *const u8) {
    release()
}

#[no_mangle]
pub unsafe extern "C" fn cabi_post_init(_result: *const u8) {
    release()
}

/// Drops what the last call returned; capacity is kept for the next call, within reason.
unsafe fn release() {
    let returned = &mut *addr_of_mut!(RETURNED);
    returned.events.clear();
    returned.records.clear();
    returned.meta.clear();
    returned.error = String::new();
    returned.events.shrink_to(64);
    returned.records.shrink_to(64);
    returned.meta.shrink_to(256);
}

fn set_panic_hook() {
    unsafe {
        if !PANIC_HOOK_SET {
            PANIC_HOOK_SET = true;
            std::panic::set_hook(Box::new(|info| log(&info.to_string())));
        }
    }
}

/// Takes ownership of a `list<u8>` the host lowered through `cabi_realloc(.., 1, len)`.
unsafe fn lift_bytes(ptr: *mut u8, len: usize) -> Vec<u8> {
    if len == 0 {
        Vec::new()
    } else {
        Vec::from_raw_parts(ptr, len, len)
    }
}

unsafe fn lift_string(ptr: *const u8, len: usize) -> String {
    match String::from_utf8(lift_bytes(ptr as *mut u8, len)) {
        Ok(text) => text,
        Err(error) => String::from_utf8_lossy(error.as_bytes()).into_owned(),
    }
}

/// Takes ownership of a `list<tuple<string, string>>` and frees the array itself.
unsafe fn lift_pairs(ptr: *mut u8, len: usize) -> Vec<(String, String)> {
    let mut pairs = Vec::with_capacity(len);
    if len == 0 {
        return pairs;
    }
    let records = ptr as *const RawMeta;
    for i in 0..len {
        let record = &*records.add(i);
        pairs.push((
            lift_string(record.key_ptr, record.key_len),
            lift_string(record.value_ptr, record.value_len),
        ));
    }
    alloc::dealloc(ptr, Layout::from_size_align_unchecked(len * 16, 4));
    pairs
}

unsafe fn lower_error(returned: &mut Returned, message: String) -> *const u8 {
    returned.error = message;
    returned.area = ResultArea {
        discriminant: 1,
        ptr: returned.error.as_ptr(),
        len: returned.error.len(),
    };
    &returned.area as *const ResultArea as *const u8
}

/// Lays the events out as ABI records that point into the events' own buffers.
unsafe fn lower_events(returned: &mut Returned, events: Vec<Event>) -> *const u8 {
    returned.events = events;
    let pair_count = returned.events.iter().map(|event| event.metadata.len()).sum();
    // Reserved up front: the records below point into `meta`, which must not move.
    returned.meta.reserve(pair_count);
    returned.records.reserve(returned.events.len());
    for event in &returned.events {
        for (key, value) in &event.metadata {
            returned.meta.push(RawMeta {
                key_ptr: key.as_ptr(),
                key_len: key.len(),
                value_ptr: value.as_ptr(),
                value_len: value.len(),
            });
        }
    }
    let mut first_pair = 0;
    for event in &returned.events {
        returned.records.push(RawEvent {
            payload_ptr: event.payload.as_ptr(),
            payload_len: event.payload.len(),
            meta_ptr: returned.meta.as_ptr().add(first_pair),
            meta_len: event.metadata.len(),
        });
        first_pair += event.metadata.len();
    }
    returned.area = ResultArea {
        discriminant: 0,
        ptr: returned.records.as_ptr() as *const u8,
        len: returned.records.len(),
    };
    &returned.area as *const ResultArea as *const u8
}

/// The body of the `process` export that `processor!` defines.
#[doc(hidden)]
pub unsafe fn __process<F>(
    payload_ptr: *mut u8,
    payload_len: usize,
    meta_ptr: *mut u8,
    meta_len: usize,
    process: F,
) -> *const u8
where
    F: FnOnce(Event) -> Output,
{
    set_panic_hook();
    release(); // in case the host skipped cabi_post_process
    let input = Event {
        payload: lift_bytes(payload_ptr, payload_len),
        metadata: lift_pairs(meta_ptr, meta_len),
    };
    let output = process(input);
    let returned = &mut *addr_of_mut!(RETURNED);
    match output {
        Ok(events) => lower_events(returned, events),
        Err(message) => lower_error(returned, message),
    }
}

/// The body of the `init` export that `processor!` defines.
#[doc(hidden)]
pub unsafe fn __init<F>(config_ptr: *mut u8, config_len: usize, init: F) -> *const u8
where
    F: FnOnce() -> Result<(), String>,
{
    set_panic_hook();
    release();
    CONFIG = Box::leak(lift_pairs(config_ptr, config_len).into_boxed_slice());
    let returned = &mut *addr_of_mut!(RETURNED);
    match init() {
        Ok(()) => {
            returned.area = ResultArea { discriminant: 0, ptr: ptr::null(), len: 0 };
            &returned.area as *const ResultArea as *const u8
        }
        Err(message) => lower_error(returned, message),
    }
}
