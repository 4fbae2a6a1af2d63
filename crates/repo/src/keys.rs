//! Key files: the master key wrapped by a key derived from a passphrase with Argon2id.
//!
//! A repository holds one key file per passphrase ("key slot") under `keys/`. Adding,
//! removing or changing a passphrase rewrites only key files; data stays as it is.

use argon2::{Algorithm, Argon2, Params, Version};
use serde::{Deserialize, Serialize};

use crate::crypto::{fill_random, open_raw, seal_raw, MasterKey};
use crate::id::Id;

const KEY_FILE_VERSION: u32 = 1;
/// Key files are a few hundred bytes; a bigger one is junk and is not read into memory.
pub const MAX_KEY_FILE_SIZE: u64 = 64 * 1024;
const WRAP_AAD: &[u8] = b"lifeboat/key";

/// Argon2id cost parameters; stored in each key file so they can change per slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct KdfParams {
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
}

impl Default for KdfParams {
    /// 32 MiB and 4 passes over 4 lanes, as RFC 9106's second recommended option has
    /// (there with 64 MiB): above OWASP's Argon2id minimums (19 MiB x 2, 46 MiB x 1), while
    /// keeping a command's peak memory (which the KDF otherwise sets) below restic's.
    /// The lanes are filled on every core: about 0.04 s on two cores of a small server
    /// where one lane took 0.08 s. An attacker's cost is memory times passes, whatever
    /// the lanes.
    fn default() -> Self {
        KdfParams {
            memory_kib: 32 * 1024,
            iterations: 4,
            parallelism: 4,
        }
    }
}

impl KdfParams {
    /// The most memory a key slot may ask for: 4 GiB.
    pub const MAX_MEMORY_KIB: u32 = 4 * 1024 * 1024;
    pub const MAX_ITERATIONS: u32 = 64;
    pub const MAX_PARALLELISM: u32 = 64;
    /// The most work (memory times passes) a slot may ask for: 16 GiB-passes, e.g. 1 GiB
    /// and 16 passes, 500 times the default. Anyone who can write to the storage can add a
    /// key file; without this bound one asking for a week of work stopped every command.
    pub const MAX_COST_KIB: u64 = 16 * 1024 * 1024;

    /// What a derivation costs (KiB times passes); slots are tried cheapest first.
    pub fn cost(&self) -> u64 {
        self.memory_kib as u64 * self.iterations as u64
    }

    /// Refuses parameters above the bounds (and those Argon2 itself refuses), naming the
    /// one that is out of range.
    pub fn check(&self) -> Result<(), KeyError> {
        let bad = |what: String| Err(KeyError::BadParams(what));
        if self.memory_kib > Self::MAX_MEMORY_KIB {
            return bad(format!(
                "memory {} MiB is above the limit of {} MiB",
                self.memory_kib / 1024,
                Self::MAX_MEMORY_KIB / 1024
            ));
        }
        if self.iterations == 0 || self.iterations > Self::MAX_ITERATIONS {
            return bad(format!(
                "{} iterations is outside 1 to {}",
                self.iterations,
                Self::MAX_ITERATIONS
            ));
        }
        if self.parallelism == 0 || self.parallelism > Self::MAX_PARALLELISM {
            return bad(format!(
                "parallelism {} is outside 1 to {}",
                self.parallelism,
                Self::MAX_PARALLELISM
            ));
        }
        if self.cost() > Self::MAX_COST_KIB {
            return bad(format!(
                "{} MiB times {} iterations is above the limit of {} MiB-iterations",
                self.memory_kib / 1024,
                self.iterations,
                Self::MAX_COST_KIB / 1024
            ));
        }
        Ok(())
    }
}

/// The JSON stored at `keys/<id>`. Not encrypted as a whole: it holds only the KDF
/// parameters, the salt and the wrapped (encrypted and authenticated) master key.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KeyFile {
    pub version: u32,
    pub created: chrono::DateTime<chrono::Utc>,
    pub host: String,
    pub username: String,
    pub kdf: String,
    pub params: KdfParams,
    #[serde(with = "hex::serde")]
    pub salt: Vec<u8>,
    /// `nonce || XChaCha20-Poly1305(master key bytes)`, AAD `lifeboat/key`.
    #[serde(with = "hex::serde")]
    pub wrapped: Vec<u8>,
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("key file is not valid: {0}")]
    Malformed(String),
    #[error(
        "key file version {0} is not supported (this lifeboat reads version {KEY_FILE_VERSION})"
    )]
    UnsupportedVersion(u32),
    #[error("wrong passphrase")]
    WrongPassphrase,
    #[error("bad key derivation parameters: {0}")]
    BadParams(String),
}

fn derive(passphrase: &[u8], salt: &[u8], params: KdfParams) -> Result<[u8; 32], KeyError> {
    params.check()?;
    let argon_params = Params::new(
        params.memory_kib,
        params.iterations,
        params.parallelism,
        Some(32),
    )
    .map_err(|e| KeyError::BadParams(e.to_string()))?;
    let mut out = [0u8; 32];
    let blocks = argon_params.block_count();
    let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, argon_params);
    let done = match KdfMemory::map(blocks) {
        Some(mut memory) => {
            argon.hash_password_into_with_memory(passphrase, salt, &mut out, memory.blocks())
        }
        None => argon.hash_password_into(passphrase, salt, &mut out),
    };
    done.map_err(|e| KeyError::BadParams(e.to_string()))?;
    Ok(out)
}

/// Argon2's working memory, mapped fresh from the kernel. The crate's own allocation
/// zero-fills all of it on the calling thread before the lanes start (Rust's
/// `alloc_zeroed` writes zeroes itself for 64-byte-aligned blocks), and first touches cost
/// 0.6 ms per MiB on a VM: 19 ms of one core for the default 32 MiB. Mapped pages are
/// zero already, and each is first touched by the lane that fills it, on every core.
struct KdfMemory {
    blocks: std::ptr::NonNull<argon2::Block>,
    count: usize,
}

impl KdfMemory {
    /// `None` when the kernel refuses the mapping; the caller then lets the crate allocate.
    fn map(count: usize) -> Option<KdfMemory> {
        let len = count.checked_mul(argon2::Block::SIZE)?;
        // SAFETY: an anonymous private mapping touches no existing memory; the result is
        // checked before use.
        let address = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if address == libc::MAP_FAILED {
            return None;
        }
        Some(KdfMemory {
            blocks: std::ptr::NonNull::new(address.cast())?,
            count,
        })
    }

    fn blocks(&mut self) -> &mut [argon2::Block] {
        // SAFETY: the mapping holds `count` blocks, is page-aligned (more than a block's 64
        // bytes), zero-filled (a valid block: it is an array of integers), lives as long as
        // `self`, and only this borrow reaches it.
        unsafe { std::slice::from_raw_parts_mut(self.blocks.as_ptr(), self.count) }
    }
}

impl Drop for KdfMemory {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the mapping made in `map`, which no borrow outlives.
        unsafe {
            libc::munmap(
                self.blocks.as_ptr().cast(),
                self.count * argon2::Block::SIZE,
            );
        }
    }
}

impl KeyFile {
    pub fn wrap(
        master: &MasterKey,
        passphrase: &[u8],
        params: KdfParams,
    ) -> Result<KeyFile, KeyError> {
        let mut salt = vec![0u8; 32];
        fill_random(&mut salt);
        let wrapping = derive(passphrase, &salt, params)?;
        Ok(KeyFile {
            version: KEY_FILE_VERSION,
            created: chrono::Utc::now(),
            host: crate::hostname(),
            username: std::env::var("USER").unwrap_or_default(),
            kdf: "argon2id".to_string(),
            params,
            salt,
            wrapped: seal_raw(&wrapping, WRAP_AAD, &master.to_bytes()),
        })
    }

    pub fn parse(bytes: &[u8]) -> Result<KeyFile, KeyError> {
        let file: KeyFile =
            serde_json::from_slice(bytes).map_err(|e| KeyError::Malformed(e.to_string()))?;
        if file.version != KEY_FILE_VERSION {
            return Err(KeyError::UnsupportedVersion(file.version));
        }
        if file.kdf != "argon2id" {
            return Err(KeyError::Malformed(format!("unknown kdf {:?}", file.kdf)));
        }
        Ok(file)
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec_pretty(self).expect("key file serializes")
    }

    /// The object name of this key file: the BLAKE3 of its bytes.
    pub fn id(bytes: &[u8]) -> Id {
        Id::of_stored(bytes)
    }

    pub fn unwrap_key(&self, passphrase: &[u8]) -> Result<MasterKey, KeyError> {
        let wrapping = derive(passphrase, &self.salt, self.params)?;
        let plain =
            open_raw(&wrapping, WRAP_AAD, &self.wrapped).map_err(|_| KeyError::WrongPassphrase)?;
        let bytes: [u8; MasterKey::LEN] = plain
            .as_slice()
            .try_into()
            .map_err(|_| KeyError::Malformed("wrapped key has the wrong length".into()))?;
        Ok(MasterKey::from_bytes(&bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FAST: KdfParams = KdfParams {
        memory_kib: 256,
        iterations: 1,
        parallelism: 1,
    };

    /// Key files written by any version must keep opening: the derivation is pinned to
    /// the output of the reference implementation (libargon2, through Python's
    /// argon2-cffi `hash_secret_raw`) for one lane and for four.
    #[test]
    fn derivation_matches_the_reference_argon2id() {
        let salt = b"lifeboat salt 0123456789abcdef!!";
        for (parallelism, expected) in [
            (
                1,
                "dca884825e03580083ee88b781724272378a8e2879aeaa2e14af555d84b2fd9d",
            ),
            (
                4,
                "921ed37ad50e6590cc535fb9fe109e3d7d5ba00de500d88f95372063229a0499",
            ),
        ] {
            let params = KdfParams {
                memory_kib: 256,
                iterations: 2,
                parallelism,
            };
            let derived = derive(b"correct horse battery staple", salt, params).unwrap();
            assert_eq!(hex::encode(derived), expected, "{parallelism} lane(s)");
        }
    }

    #[test]
    fn wrap_and_unwrap() {
        let master = MasterKey::generate();
        let file = KeyFile::wrap(&master, b"correct horse", FAST).unwrap();
        let parsed = KeyFile::parse(&file.to_bytes()).unwrap();
        let unwrapped = parsed.unwrap_key(b"correct horse").unwrap();
        assert_eq!(unwrapped.to_bytes(), master.to_bytes());
        assert!(matches!(
            parsed.unwrap_key(b"wrong"),
            Err(KeyError::WrongPassphrase)
        ));
    }

    #[test]
    fn absurd_kdf_parameters_are_refused_before_any_work() {
        let master = MasterKey::generate();
        let mut file = KeyFile::wrap(&master, b"p", FAST).unwrap();
        for (params, says) in [
            (
                KdfParams {
                    iterations: 4_000_000_000,
                    ..FAST
                },
                "iterations",
            ),
            (
                KdfParams {
                    memory_kib: u32::MAX,
                    ..FAST
                },
                "memory",
            ),
            (
                KdfParams {
                    parallelism: 1000,
                    ..FAST
                },
                "parallelism",
            ),
            (
                KdfParams {
                    memory_kib: 2 * 1024 * 1024,
                    iterations: 64,
                    parallelism: 1,
                },
                "MiB-iterations",
            ),
        ] {
            file.params = params;
            match file.unwrap_key(b"p") {
                Err(KeyError::BadParams(e)) => assert!(e.contains(says), "{e}"),
                other => panic!("{params:?} was accepted: {:?}", other.map(|_| ())),
            }
            assert!(KeyFile::wrap(&master, b"p", params).is_err());
        }
        assert!(KdfParams::default().check().is_ok());
    }

    #[test]
    fn unknown_version_is_refused() {
        let master = MasterKey::generate();
        let mut file = KeyFile::wrap(&master, b"p", FAST).unwrap();
        file.version = 9;
        assert!(matches!(
            KeyFile::parse(&file.to_bytes()),
            Err(KeyError::UnsupportedVersion(9))
        ));
    }
}
