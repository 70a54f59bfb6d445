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
//! Capabilities are modules of this file: `log` (wasi:logging, levels), `config` (the
//! same configuration through wasi:config), `kv` (key-value buckets, atomic counters) and
//! `http` (outgoing requests). Each is a Wasm import that a module gets only if it calls
//! it; key-value and HTTP need a grant in the pipeline file (docs/capabilities/).
//!
//! ```ignore
//! fn count(input: Event) -> sluice::Output {
//!     let counts = sluice::kv::bucket("counts")?; // opened once, kept by the SDK
//!     let n = counts.increment(input.payload_str().unwrap_or(""), 1)?;
//!     sluice::log::info("count", &format!("{} events", n));
//!     Ok(vec![input])
//! }
//! ```
//!
//! This file implements the canonical-ABI lowering of the world in wit/processor.wit:
//! `memory` (from the linker), `cabi_realloc`, `process`, `cabi_post_process`, `init`,
//! `cabi_post_init`, and the capability imports. Without capabilities, the only import
//! is `wasi_snapshot_preview1.fd_write`, for `log`.

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

// ---- capabilities ----------------------------------------------------------------------
//
// Logging, the node's live configuration, key-value buckets and outgoing HTTP: each is a
// Wasm import, and a module imports only the functions it calls (the linker drops the
// rest), so `upper.rs` imports none of them. Key-value and HTTP need a grant in the
// pipeline file (`capabilities:`); Sluice refuses to load a module that imports one its
// node was not granted. docs/capabilities/ has a page for each.
//
// The host returns strings and lists through `cabi_realloc`, so they arrive as ordinary
// Rust allocations that the wrappers below take over (`Vec`, `String`): they are yours
// and live as long as you keep them, init included.

/// wasi:logging (always granted): lines with a level and a context, tagged with the node
/// id by the host. `sluice::log(line)` (stderr) works too, without a level.
pub mod log {
    /// The wasi:logging levels, in the WIT order. The node's `capabilities.logging.level`
    /// (default info) drops the lines below it before they reach the log.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
    pub enum Level {
        Trace,
        Debug,
        Info,
        Warn,
        Error,
        Critical,
    }

    #[link(wasm_import_module = "wasi:logging/logging@0.1.0-draft")]
    extern "C" {
        #[link_name = "log"]
        fn import_log(level: i32, ctx: *const u8, ctx_len: usize, msg: *const u8, msg_len: usize);
    }

    /// Logs `message` at `level`; `context` ("" for none) groups related lines.
    pub fn log(level: Level, context: &str, message: &str) {
        unsafe {
            import_log(level as i32, context.as_ptr(), context.len(), message.as_ptr(), message.len())
        }
    }

    pub fn trace(context: &str, message: &str) {
        log(Level::Trace, context, message)
    }
    pub fn debug(context: &str, message: &str) {
        log(Level::Debug, context, message)
    }
    pub fn info(context: &str, message: &str) {
        log(Level::Info, context, message)
    }
    pub fn warn(context: &str, message: &str) {
        log(Level::Warn, context, message)
    }
    pub fn error(context: &str, message: &str) {
        log(Level::Error, context, message)
    }
    pub fn critical(context: &str, message: &str) {
        log(Level::Critical, context, message)
    }
}

/// wasi:config (always granted): the node's `config` map, read through the import.
///
/// `sluice::config(key)` reads the copy `init` received and imports nothing; these read
/// the same values through wasi:config, which any component host may provide. Each call
/// is a host call, so read what you need once, in init.
pub mod config {
    use super::{lift_pairs, lift_string, RetArea};

    #[link(wasm_import_module = "wasi:config/store@0.2.0-draft")]
    extern "C" {
        #[link_name = "get"]
        fn import_get(key: *const u8, key_len: usize, ret: *mut u8);
        #[link_name = "get-all"]
        fn import_get_all(ret: *mut u8);
    }

    /// Lifts config's `error` at `at` (upstream(string) or io(string)) into a message.
    unsafe fn lift_error(ret: &RetArea, at: usize) -> String {
        let case = if ret.u8(at) == 0 { "upstream" } else { "io" };
        let (ptr, len) = ret.list(at + 4);
        format!("{}: {}", case, lift_string(ptr, len))
    }

    /// The value of `key`; `None` when it is not configured (or when the host reports an
    /// error, which Sluice never does).
    pub fn get(key: &str) -> Option<String> {
        let mut ret = RetArea::new();
        unsafe {
            import_get(key.as_ptr(), key.len(), ret.ptr());
            // result<option<string>, error>: option tag at 4, string at 8 / error at 4.
            if ret.u8(0) != 0 {
                lift_error(&ret, 4);
                return None;
            }
            if ret.u8(4) == 0 {
                return None;
            }
            let (ptr, len) = ret.list(8);
            Some(lift_string(ptr, len))
        }
    }

    /// Every pair, in the pipeline file's order.
    pub fn get_all() -> Result<Vec<(String, String)>, String> {
        let mut ret = RetArea::new();
        unsafe {
            import_get_all(ret.ptr());
            // result<list<tuple<string, string>>, error>: list at 4 / error at 4.
            if ret.u8(0) != 0 {
                return Err(lift_error(&ret, 4));
            }
            let (ptr, len) = ret.list(4);
            Ok(lift_pairs(ptr as *mut u8, len))
        }
    }
}

/// wasi:keyvalue (granted per bucket: `capabilities: {keyvalue: {NAME: BACKEND}}`).
///
/// Every instance and worker of a pipeline shares a bucket; `increment` is atomic across
/// all of them. Keys are strings, values bytes; a counter's value is its decimal text.
pub mod kv {
    use super::{lift_bytes, lift_string, RetArea};
    use std::fmt;

    const NO_SUCH_STORE: u8 = 0;
    const ACCESS_DENIED: u8 = 1;

    #[link(wasm_import_module = "wasi:keyvalue/store@0.2.0-draft2")]
    extern "C" {
        #[link_name = "open"]
        fn import_open(name: *const u8, name_len: usize, ret: *mut u8);
        #[link_name = "[method]bucket.get"]
        fn import_get(bucket: u32, key: *const u8, key_len: usize, ret: *mut u8);
        #[link_name = "[method]bucket.set"]
        fn import_set(
            bucket: u32,
            key: *const u8,
            key_len: usize,
            value: *const u8,
            value_len: usize,
            ret: *mut u8,
        );
        #[link_name = "[method]bucket.delete"]
        fn import_delete(bucket: u32, key: *const u8, key_len: usize, ret: *mut u8);
        #[link_name = "[method]bucket.exists"]
        fn import_exists(bucket: u32, key: *const u8, key_len: usize, ret: *mut u8);
        #[link_name = "[method]bucket.list-keys"]
        fn import_list_keys(
            bucket: u32,
            cursor_is_some: i32,
            cursor: *const u8,
            cursor_len: usize,
            ret: *mut u8,
        );
        #[link_name = "[resource-drop]bucket"]
        fn import_drop(bucket: u32);
    }

    #[link(wasm_import_module = "wasi:keyvalue/atomics@0.2.0-draft2")]
    extern "C" {
        #[link_name = "increment"]
        fn import_increment(bucket: u32, key: *const u8, key_len: usize, delta: i64, ret: *mut u8);
    }

    /// wasi:keyvalue's `error`.
    #[derive(Clone, Debug, PartialEq, Eq)]
    pub enum Error {
        /// The node's grant names no bucket of that name.
        NoSuchStore,
        AccessDenied,
        /// The backend failed (connection, disk, a value that is not a number, ...).
        Other(String),
    }

    impl fmt::Display for Error {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            match self {
                Error::NoSuchStore => f.write_str("no-such-store"),
                Error::AccessDenied => f.write_str("access-denied"),
                Error::Other(text) => write!(f, "other: {}", text),
            }
        }
    }

    /// So that `?` works in a processor, whose error is a `String`.
    impl From<Error> for String {
        fn from(error: Error) -> String {
            error.to_string()
        }
    }

    /// Lifts the `error` at `at`: a u8 case, then the string of `other` at `at + 4`.
    unsafe fn lift_error(ret: &RetArea, at: usize) -> Error {
        match ret.u8(at) {
            NO_SUCH_STORE => Error::NoSuchStore,
            ACCESS_DENIED => Error::AccessDenied,
            _ => {
                let (ptr, len) = ret.list(at + 4);
                Error::Other(lift_string(ptr, len))
            }
        }
    }

    /// result<_, error> and friends: tag at 0, error at 4.
    unsafe fn check(ret: &RetArea) -> Result<(), Error> {
        if ret.u8(0) == 0 {
            Ok(())
        } else {
            Err(lift_error(ret, 4))
        }
    }

    /// One page of keys, in no particular order.
    #[derive(Clone, Debug, Default, PartialEq, Eq)]
    pub struct KeyPage {
        pub keys: Vec<String>,
        /// Pass it to the next `list_keys`; `None` when this was the last page.
        pub cursor: Option<String>,
    }

    /// An open bucket. Dropping it releases the handle, not the data.
    #[derive(Debug)]
    pub struct Bucket {
        handle: u32,
    }

    impl Bucket {
        /// Opens bucket `name`.
        pub fn open(name: &str) -> Result<Bucket, Error> {
            let mut ret = RetArea::new();
            unsafe {
                import_open(name.as_ptr(), name.len(), ret.ptr());
                check(&ret)?;
                Ok(Bucket { handle: ret.u32(4) })
            }
        }

        /// The value at `key`, or `None` when there is none.
        pub fn get(&self, key: &str) -> Result<Option<Vec<u8>>, Error> {
            let mut ret = RetArea::new();
            unsafe {
                import_get(self.handle, key.as_ptr(), key.len(), ret.ptr());
                check(&ret)?;
                // ok: option tag at 4, list<u8> at 8.
                if ret.u8(4) == 0 {
                    return Ok(None);
                }
                let (ptr, len) = ret.list(8);
                Ok(Some(lift_bytes(ptr as *mut u8, len)))
            }
        }

        /// The value at `key` as text (invalid UTF-8 replaced), or `None`.
        pub fn get_string(&self, key: &str) -> Result<Option<String>, Error> {
            Ok(self.get(key)?.map(|bytes| match String::from_utf8(bytes) {
                Ok(text) => text,
                Err(error) => String::from_utf8_lossy(error.as_bytes()).into_owned(),
            }))
        }

        /// Stores `value` at `key`, replacing any earlier value.
        pub fn set(&self, key: &str, value: &[u8]) -> Result<(), Error> {
            let mut ret = RetArea::new();
            unsafe {
                import_set(
                    self.handle,
                    key.as_ptr(),
                    key.len(),
                    value.as_ptr(),
                    value.len(),
                    ret.ptr(),
                );
                check(&ret)
            }
        }

        /// Removes `key`; succeeds when it was absent.
        pub fn delete(&self, key: &str) -> Result<(), Error> {
            let mut ret = RetArea::new();
            unsafe {
                import_delete(self.handle, key.as_ptr(), key.len(), ret.ptr());
                check(&ret)
            }
        }

        /// Whether `key` has a value.
        pub fn exists(&self, key: &str) -> Result<bool, Error> {
            let mut ret = RetArea::new();
            unsafe {
                import_exists(self.handle, key.as_ptr(), key.len(), ret.ptr());
                check(&ret)?;
                Ok(ret.u8(4) != 0)
            }
        }

        /// A page of keys: `None` for the first page, then the previous page's cursor.
        pub fn list_keys(&self, cursor: Option<&str>) -> Result<KeyPage, Error> {
            let mut ret = RetArea::new();
            let (is_some, text) = match cursor {
                Some(text) => (1, text),
                None => (0, ""),
            };
            unsafe {
                import_list_keys(self.handle, is_some, text.as_ptr(), text.len(), ret.ptr());
                check(&ret)?;
                // ok: keys (list<string>) at 4, cursor option tag at 12, string at 16.
                let (keys_ptr, count) = ret.list(4);
                let mut keys = Vec::with_capacity(count);
                for i in 0..count {
                    let record = keys_ptr.add(i * 8);
                    let ptr = u32::from_le_bytes(*(record as *const [u8; 4])) as *const u8;
                    let len = u32::from_le_bytes(*(record.add(4) as *const [u8; 4])) as usize;
                    keys.push(lift_string(ptr, len));
                }
                if count > 0 {
                    std::alloc::dealloc(
                        keys_ptr as *mut u8,
                        std::alloc::Layout::from_size_align_unchecked(count * 8, 4),
                    );
                }
                let cursor = if ret.u8(12) != 0 {
                    let (ptr, len) = ret.list(16);
                    Some(lift_string(ptr, len))
                } else {
                    None
                };
                Ok(KeyPage { keys, cursor })
            }
        }

        /// Adds `delta` to the counter at `key` (absent: 0) and returns the new value,
        /// atomically across every instance and worker. A value that is not a decimal
        /// integer is an `Error::Other`.
        pub fn increment(&self, key: &str, delta: i64) -> Result<i64, Error> {
            let mut ret = RetArea::new();
            unsafe {
                import_increment(self.handle, key.as_ptr(), key.len(), delta, ret.ptr());
                // result<s64, error>: the s64 aligns the payload to 8, error included.
                if ret.u8(0) != 0 {
                    return Err(lift_error(&ret, 8));
                }
                Ok(ret.i64(8))
            }
        }
    }

    impl Drop for Bucket {
        fn drop(&mut self) {
            unsafe { import_drop(self.handle) }
        }
    }

    /// Bucket `name`, opened on first use and then kept for the instance's life: the way
    /// to use a bucket from `process` without a global of your own. A failed open is not
    /// kept, so the next call tries again.
    pub fn bucket(name: &str) -> Result<&'static Bucket, Error> {
        static mut OPENED: Vec<(String, &'static Bucket)> = Vec::new();
        let opened = unsafe { &mut *std::ptr::addr_of_mut!(OPENED) };
        if let Some((_, bucket)) = opened.iter().find(|(n, _)| n == name) {
            return Ok(bucket);
        }
        let bucket: &'static Bucket = Box::leak(Box::new(Bucket::open(name)?));
        opened.push((name.to_string(), bucket));
        Ok(bucket)
    }
}

/// Outgoing HTTP (granted with `capabilities: {http: {allowed_hosts: [...]}}`): one call
/// sends a whole request and returns the whole response, after the redirects the grant
/// allows. Headers the grant sets for a host (secrets) are added by the host and never
/// seen here. Any status is a response; `send` fails only when there is none.
pub mod http {
    use super::{lift_bytes, lift_pairs, lift_string, RawMeta, RetArea};
    use std::fmt;

    #[link(wasm_import_module = "sluice:processor/outgoing-http@0.1.0")]
    extern "C" {
        #[link_name = "send"]
        fn import_send(
            method: *const u8,
            method_len: usize,
            url: *const u8,
            url_len: usize,
            headers: *const RawMeta,
            header_count: usize,
            body: *const u8,
            body_len: usize,
            ret: *mut u8,
        );
    }

    /// A request. Build one with `Request::get(url)` or `Request::post(url, body)` and
    /// add headers with `.header(name, value)`.
    #[derive(Clone, Debug, Default, PartialEq, Eq)]
    pub struct Request {
        /// GET, POST, PUT, PATCH, DELETE or HEAD.
        pub method: String,
        /// Absolute, `http://` or `https://`.
        pub url: String,
        pub headers: Vec<(String, String)>,
        pub body: Vec<u8>,
    }

    impl Request {
        pub fn new(method: &str, url: impl Into<String>) -> Request {
            Request { method: method.to_string(), url: url.into(), ..Request::default() }
        }
        pub fn get(url: impl Into<String>) -> Request {
            Request::new("GET", url)
        }
        pub fn post(url: impl Into<String>, body: impl Into<Vec<u8>>) -> Request {
            Request { body: body.into(), ..Request::new("POST", url) }
        }
        pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Request {
            self.headers.push((name.into(), value.into()));
            self
        }
    }

    /// The final response.
    #[derive(Clone, Debug, Default, PartialEq, Eq)]
    pub struct Response {
        pub status: u16,
        pub headers: Vec<(String, String)>,
        pub body: Vec<u8>,
    }

    impl Response {
        /// The first header named `name`, ASCII case-insensitively.
        pub fn header(&self, name: &str) -> Option<&str> {
            self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
        }

        /// The body as text, if it is valid UTF-8.
        pub fn body_str(&self) -> Option<&str> {
            std::str::from_utf8(&self.body).ok()
        }
    }

    /// outgoing-http's `error`.
    #[derive(Clone, Debug, PartialEq, Eq)]
    pub enum Error {
        /// The grant does not allow the target; the text says which rule refused it.
        Denied(String),
        /// An unparsable URL, an unknown method, a bad header.
        InvalidRequest(String),
        /// No complete response within the grant's timeout.
        Timeout,
        /// The request or response body is larger than the grant allows.
        TooLarge,
        /// Name resolution, connection, TLS or protocol failure.
        Failed(String),
    }

    impl fmt::Display for Error {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            match self {
                Error::Denied(text) => write!(f, "denied: {}", text),
                Error::InvalidRequest(text) => write!(f, "invalid-request: {}", text),
                Error::Timeout => f.write_str("timeout"),
                Error::TooLarge => f.write_str("too-large"),
                Error::Failed(text) => write!(f, "failed: {}", text),
            }
        }
    }

    /// So that `?` works in a processor, whose error is a `String`.
    impl From<Error> for String {
        fn from(error: Error) -> String {
            error.to_string()
        }
    }

    /// Sends `request` and waits for the whole response.
    pub fn send(request: &Request) -> Result<Response, Error> {
        let headers: Vec<RawMeta> = request
            .headers
            .iter()
            .map(|(name, value)| RawMeta {
                key_ptr: name.as_ptr(),
                key_len: name.len(),
                value_ptr: value.as_ptr(),
                value_len: value.len(),
            })
            .collect();
        let mut ret = RetArea::new();
        unsafe {
            import_send(
                request.method.as_ptr(),
                request.method.len(),
                request.url.as_ptr(),
                request.url.len(),
                headers.as_ptr(),
                headers.len(),
                request.body.as_ptr(),
                request.body.len(),
                ret.ptr(),
            );
            // result<response, error>: status at 4, headers at 8, body at 16 / error at 4.
            if ret.u8(0) != 0 {
                let text = |ret: &RetArea| {
                    let (ptr, len) = ret.list(8);
                    lift_string(ptr, len)
                };
                return Err(match ret.u8(4) {
                    0 => Error::Denied(text(&ret)),
                    1 => Error::InvalidRequest(text(&ret)),
                    2 => Error::Timeout,
                    3 => Error::TooLarge,
                    _ => Error::Failed(text(&ret)),
                });
            }
            let (headers_ptr, header_count) = ret.list(8);
            let (body_ptr, body_len) = ret.list(16);
            Ok(Response {
                status: ret.u16(4),
                headers: lift_pairs(headers_ptr as *mut u8, header_count),
                body: lift_bytes(body_ptr as *mut u8, body_len),
            })
        }
    }

    /// GET `url`.
    pub fn get(url: &str) -> Result<Response, Error> {
        send(&Request::get(url))
    }
}

/// A return area for an import's result: 24 bytes aligned to 8 hold every result in the
/// world. The host writes it; the wrappers read fields at their canonical-ABI offsets
/// (little-endian, like wasm32 itself).
#[repr(C, align(8))]
struct RetArea([u8; 24]);

impl RetArea {
    fn new() -> RetArea {
        RetArea([0; 24])
    }
    fn ptr(&mut self) -> *mut u8 {
        self.0.as_mut_ptr()
    }
    fn u8(&self, at: usize) -> u8 {
        self.0[at]
    }
    fn u16(&self, at: usize) -> u16 {
        u16::from_le_bytes([self.0[at], self.0[at + 1]])
    }
    fn u32(&self, at: usize) -> u32 {
        let mut bytes = [0; 4];
        bytes.copy_from_slice(&self.0[at..at + 4]);
        u32::from_le_bytes(bytes)
    }
    fn i64(&self, at: usize) -> i64 {
        let mut bytes = [0; 8];
        bytes.copy_from_slice(&self.0[at..at + 8]);
        i64::from_le_bytes(bytes)
    }
    /// A string or list: (pointer, length) at `at`.
    fn list(&self, at: usize) -> (*const u8, usize) {
        (self.u32(at) as usize as *const u8, self.u32(at + 4) as usize)
    }
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
