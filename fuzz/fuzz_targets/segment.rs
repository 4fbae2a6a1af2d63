//! A stream segment's plaintext (both format versions).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = lifeboat_repo::segment::Segment::decode(data);
});
