//! A pack's tail: the length field is read before authentication (any bytes), and the
//! header's entries after it (bytes sealed with the repository key).
#![no_main]
use libfuzzer_sys::fuzz_target;
use lifeboat_repo::crypto::{MasterKey, ObjectKind};
use lifeboat_repo::pack::parse_header;

fuzz_target!(|data: &[u8]| {
    let key = MasterKey::from_bytes(&[7u8; MasterKey::LEN]);
    let _ = parse_header(&key, data.len() as u64, data);

    // The same bytes as an authentic header, after a few bytes of pack body.
    let sealed = key.seal(ObjectKind::PackHeader, data, None);
    let mut pack = vec![0u8; 16];
    pack.extend_from_slice(&sealed);
    pack.extend_from_slice(&(sealed.len() as u32).to_le_bytes());
    if let Ok(blobs) = parse_header(&key, pack.len() as u64, &pack) {
        let body: u64 = blobs.iter().map(|b| b.length as u64).sum();
        assert!(body <= pack.len() as u64, "entries claim more bytes than the pack has");
    }
});
