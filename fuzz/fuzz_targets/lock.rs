//! A lock record's plaintext (JSON), and the line that describes it to people.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(record) = serde_json::from_slice::<lifeboat_repo::lock::LockRecord>(data) {
        let _ = record.describe();
    }
});
