//! counter.rs - counts events by payload in a key-value bucket, with atomic increments:
//! for each event it adds 1 to the counter named by the payload (trimmed) and emits
//! `"<payload> <count>"`, the count including this event. The output keeps the input's
//! metadata. However many workers and instances run, and whichever backend holds the
//! bucket, the counts are exact: every increment is one atomic step in the bucket.
//!
//! config:  bucket   the bucket holding the counters (default `counts`); the node needs
//!                   a grant for it: capabilities: {keyvalue: {counts: memory}}
//!
//!     build/sluice run examples/pipelines/counter.yaml | sort -k2 -n | tail -1
//!     apple 100000          (two workers, 50000 events each, one counter)

#[path = "../../../sdk/rust/sluice.rs"]
mod sluice;

use sluice::{kv, Event};

fn bucket_name() -> &'static str {
    sluice::config("bucket").unwrap_or("counts")
}

fn count(input: Event) -> sluice::Output {
    let key = input.payload_str().ok_or("the payload is not UTF-8 text")?.trim();
    if key.is_empty() {
        return Err("the payload is empty: nothing to count".to_string());
    }
    let total = kv::bucket(bucket_name())?.increment(key, 1)?;
    let line = format!("{} {}", key, total);
    Ok(vec![input.with_payload(line)])
}

/// Opens the bucket once, so a node without the grant stops at start with the reason.
fn setup() -> Result<(), String> {
    let name = bucket_name();
    kv::bucket(name).map_err(|error| format!("bucket {}: {}", name, error))?;
    Ok(())
}

sluice::processor!(count, init = setup);
