//! An index file's plaintext (JSON), then merged into a master index as readers do.
#![no_main]
use libfuzzer_sys::fuzz_target;
use lifeboat_repo::index::{IndexFile, MasterIndex};

fuzz_target!(|data: &[u8]| {
    if let Ok(file) = serde_json::from_slice::<IndexFile>(data) {
        let mut index = MasterIndex::default();
        index.add_file(&file);
        let _ = index.blob_count();
    }
});
