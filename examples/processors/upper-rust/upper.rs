//! upper.rs - uppercases the payload, the Rust way: valid UTF-8 is uppercased by Unicode
//! rules (`straße` becomes `STRASSE`), other payloads byte by byte for ASCII letters.
//! The output keeps the input's metadata.
//!
//! config:  suffix   optional text appended to every payload (one line; default none)
//!
//!     sluice invoke upper_rust.wasm --payload hello --config suffix=!   ->  HELLO!

#[path = "../../../sdk/rust/sluice.rs"]
mod sluice;

use sluice::Event;

fn upper(mut input: Event) -> sluice::Output {
    let suffix = sluice::config("suffix").unwrap_or("");
    match input.payload_str() {
        Some(text) => {
            let mut upper = text.to_uppercase();
            upper.push_str(suffix);
            input.payload = upper.into_bytes();
        }
        None => {
            input.payload.make_ascii_uppercase();
            input.payload.extend_from_slice(suffix.as_bytes());
        }
    }
    Ok(vec![input])
}

/// Checks the configuration once, so a bad value stops the node before any event flows.
fn setup() -> Result<(), String> {
    if let Some(suffix) = sluice::config("suffix") {
        if suffix.contains('\n') {
            return Err("suffix: must be a single line".to_string());
        }
        sluice::log(&format!("upper-rust: appending suffix {:?}", suffix));
    }
    Ok(())
}

sluice::processor!(upper, init = setup);
