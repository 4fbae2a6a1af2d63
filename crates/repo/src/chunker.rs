//! Content-defined chunking (FastCDC 2020 with a keyed gear table).

use std::io::Read;

use fastcdc::v2020::{Normalization, StreamCDC};

use crate::config::ChunkerParams;

/// Splits a stream into chunks whose boundaries depend on content, so an insertion or
/// a changed page moves only the chunks around it. Yields `(offset, bytes)`.
pub fn chunks<R: Read>(
    reader: R,
    params: &ChunkerParams,
    seed: u64,
) -> impl Iterator<Item = std::io::Result<(u64, Vec<u8>)>> {
    StreamCDC::with_level_and_seed(
        reader,
        params.min_size as usize,
        params.avg_size as usize,
        params.max_size as usize,
        Normalization::Level1,
        seed,
    )
    .map(|r| match r {
        Ok(chunk) => Ok((chunk.offset, chunk.data)),
        Err(fastcdc::v2020::Error::IoError(e)) => Err(e),
        Err(e) => Err(std::io::Error::other(e.to_string())),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn small() -> ChunkerParams {
        ChunkerParams {
            algorithm: "fastcdc-2020".into(),
            min_size: 256,
            avg_size: 1024,
            max_size: 4096,
        }
    }

    fn pseudo_random(len: usize, seed: u64) -> Vec<u8> {
        let mut state = seed | 1;
        (0..len)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state as u8
            })
            .collect()
    }

    proptest! {
        #[test]
        fn chunks_cover_the_input_exactly(data in proptest::collection::vec(any::<u8>(), 0..40_000), seed in any::<u64>()) {
            let params = small();
            let mut joined = Vec::new();
            let mut expected_offset = 0u64;
            for chunk in chunks(&data[..], &params, seed) {
                let (offset, bytes) = chunk.unwrap();
                prop_assert_eq!(offset, expected_offset);
                prop_assert!(bytes.len() <= params.max_size as usize);
                prop_assert!(!bytes.is_empty());
                expected_offset += bytes.len() as u64;
                joined.extend_from_slice(&bytes);
            }
            prop_assert_eq!(joined, data);
        }

        #[test]
        fn a_local_edit_changes_few_chunks(pos in 0usize..200_000, seed in any::<u64>()) {
            let params = small();
            let original = pseudo_random(200_000, 7);
            let mut edited = original.clone();
            edited[pos] ^= 0xff;
            let set = |d: &[u8]| -> std::collections::HashSet<Vec<u8>> {
                chunks(d, &params, seed).map(|c| c.unwrap().1).collect()
            };
            let before = set(&original);
            let after = set(&edited);
            // Boundaries resynchronise within a few chunks of the edit: the new chunks
            // cover a few max-size spans at most, not the rest of the 200 KB input.
            let new_bytes: usize = after.difference(&before).map(|c| c.len()).sum();
            prop_assert!(new_bytes <= 4 * params.max_size as usize, "{} new bytes for a 1-byte edit", new_bytes);
        }
    }

    #[test]
    fn the_seed_moves_boundaries() {
        let data = pseudo_random(100_000, 3);
        let cuts = |seed| -> Vec<u64> {
            chunks(&data[..], &small(), seed)
                .map(|c| c.unwrap().0)
                .collect()
        };
        assert_ne!(cuts(1), cuts(2));
        assert_eq!(cuts(1), cuts(1));
    }
}
