//! The committed test-vector repository (`docs/test-vectors/repo`) decodes to the committed
//! source tree (`docs/test-vectors/source`), two ways:
//!
//! 1. with a minimal decoder written here from `docs/FORMAT.md` alone, using only the
//!    primitives (BLAKE3, XChaCha20-Poly1305, Argon2id, zstd, JSON) and none of Lifeboat's
//!    own crates, so the format document is proven sufficient and the format stable;
//! 2. with the real `lifeboat restore`, so the binary still reads repositories written by
//!    earlier versions of itself.
//!
//! Nothing is written under `docs/`: the binary works on a copy in a temporary directory.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use argon2::{Algorithm, Argon2, Params, Version};
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use serde_json::Value;

const PASSPHRASE: &str = "lifeboat-test-vector";

// Intermediate values, also listed in docs/test-vectors/README.md.
const KEY_FILE: &str = "keys/83aff1f4a13accbd80be49bad2e5108fec20e204db943bee0bcebe60c4f26f0d";
const MASTER_KEY: &str = "a0febcadfd80900b39da6c2c31ab173413a7a737536703187bad44458201e4d580528ee65aace9076777e42ae5a120e1e9b873ab7e989ae41657c0ac799fc50b";
const CHUNKER_SEED: u64 = 11037765081826224286;
const SNAPSHOT: &str = "eff7bb5cf529294e307a5706fe529d106d12f7966d0228886cb45204e9236ed8";
const HELLO_BLOB: &str = "28dd0ed2e689d4bf72097610ced5f590ef946bc8d20b7971f39b5cebb055e23d";
const PACK: &str = "data/fd/fd3487d64b94cdff2a242d90440d7ed2b7b1d7ae2b8682127543c3ca6f69b2cc";
/// Every entry of the vector source was given this mtime (2026-01-01T12:00:00Z).
const MTIME: i64 = 1_767_268_800;

fn vectors() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/test-vectors")
}

// ---------------------------------------------------------------------------------------
// The independent decoder.
// ---------------------------------------------------------------------------------------

const NONCE_LEN: usize = 24;
const TAG_LEN: usize = 16;
const HEADER_ENTRY_LEN: usize = 41;

/// XChaCha20-Poly1305 over `nonce (24) || ciphertext || tag (16)`.
fn open_raw(key: &[u8], aad: &[u8], sealed: &[u8]) -> Result<Vec<u8>, String> {
    if sealed.len() < NONCE_LEN + TAG_LEN {
        return Err(format!(
            "{} bytes is too short for a sealed object",
            sealed.len()
        ));
    }
    let (nonce, ciphertext) = sealed.split_at(NONCE_LEN);
    XChaCha20Poly1305::new_from_slice(key)
        .map_err(|e| e.to_string())?
        .decrypt(
            XNonce::from_slice(nonce),
            Payload {
                msg: ciphertext,
                aad,
            },
        )
        .map_err(|_| "authentication failed".to_string())
}

/// A sealed object's plaintext is one compression byte (0 none, 1 zstd) and the payload.
fn open_object(enc_key: &[u8], aad: &[u8], sealed: &[u8]) -> Result<Vec<u8>, String> {
    let plaintext = open_raw(enc_key, aad, sealed)?;
    match plaintext.split_first() {
        Some((0, body)) => Ok(body.to_vec()),
        Some((1, body)) => zstd::stream::decode_all(body).map_err(|e| e.to_string()),
        Some((tag, _)) => Err(format!("unknown compression byte {tag}")),
        None => Err("empty plaintext".into()),
    }
}

fn blake3_hex(bytes: &[u8]) -> String {
    blake3::hash(bytes).to_hex().to_string()
}

/// Content-named objects are named by the plain BLAKE3 of their stored bytes.
fn check_name(name: &str, bytes: &[u8]) {
    let last = name.rsplit('/').next().unwrap();
    assert_eq!(
        blake3_hex(bytes),
        last,
        "{name}: name is not the BLAKE3 of the bytes"
    );
}

fn str_field<'a>(v: &'a Value, field: &str) -> &'a str {
    v[field]
        .as_str()
        .unwrap_or_else(|| panic!("{field} is not a string in {v}"))
}

fn u64_field(v: &Value, field: &str) -> u64 {
    v[field]
        .as_u64()
        .unwrap_or_else(|| panic!("{field} is not an integer in {v}"))
}

fn hex_field(v: &Value, field: &str) -> Vec<u8> {
    hex::decode(str_field(v, field)).unwrap_or_else(|e| panic!("{field}: {e}"))
}

/// Unwraps the 64-byte master key from a key file.
fn unwrap_master_key(key_file: &[u8], passphrase: &[u8]) -> Result<[u8; 64], String> {
    let file: Value = serde_json::from_slice(key_file).map_err(|e| e.to_string())?;
    assert_eq!(u64_field(&file, "version"), 1);
    assert_eq!(str_field(&file, "kdf"), "argon2id");
    let params = &file["params"];
    let params = Params::new(
        u64_field(params, "memory_kib") as u32,
        u64_field(params, "iterations") as u32,
        u64_field(params, "parallelism") as u32,
        Some(32),
    )
    .map_err(|e| e.to_string())?;
    let mut wrapping = [0u8; 32];
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password_into(passphrase, &hex_field(&file, "salt"), &mut wrapping)
        .map_err(|e| e.to_string())?;
    let master = open_raw(&wrapping, b"lifeboat/key", &hex_field(&file, "wrapped"))?;
    master
        .try_into()
        .map_err(|_| "the master key is not 64 bytes".to_string())
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct BlobEntry {
    pack: String,
    kind: String,
    offset: u64,
    length: u64,
    raw_length: u64,
}

/// Parses a pack's trailing header into `(kind, offset, length, raw_length, id)` entries.
fn parse_pack_header(enc_key: &[u8], pack: &[u8]) -> Vec<(String, u64, u64, u64, String)> {
    let n = pack.len();
    let header_len = u32::from_le_bytes(pack[n - 4..].try_into().unwrap()) as usize;
    let header = open_object(
        enc_key,
        b"lifeboat/pack-header",
        &pack[n - 4 - header_len..n - 4],
    )
    .expect("pack header opens");
    assert_eq!(header.len() % HEADER_ENTRY_LEN, 0, "partial header entry");
    let mut offset = 0u64;
    let mut entries = Vec::new();
    for entry in header.chunks_exact(HEADER_ENTRY_LEN) {
        let kind = match entry[0] {
            0 => "data",
            1 => "tree",
            other => panic!("unknown blob kind {other}"),
        };
        let length = u32::from_le_bytes(entry[1..5].try_into().unwrap()) as u64;
        let raw_length = u32::from_le_bytes(entry[5..9].try_into().unwrap()) as u64;
        entries.push((
            kind.to_string(),
            offset,
            length,
            raw_length,
            hex::encode(&entry[9..41]),
        ));
        offset += length;
    }
    assert_eq!(
        offset + header_len as u64 + 4,
        n as u64,
        "blobs, header and length do not add up to the pack size"
    );
    entries
}

/// What a directory holds, path by path.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Entry {
    Dir,
    File { content: Vec<u8>, executable: bool },
    Symlink(String),
}

struct Decoder {
    root: PathBuf,
    enc_key: Vec<u8>,
    chunk_id_key: [u8; 32],
    blobs: HashMap<String, BlobEntry>,
    packs: HashMap<String, Vec<u8>>,
}

impl Decoder {
    fn open(root: &Path, passphrase: &str) -> Decoder {
        let keys: Vec<_> = fs::read_dir(root.join("keys"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        let master = keys
            .iter()
            .find_map(|path| {
                unwrap_master_key(&fs::read(path).unwrap(), passphrase.as_bytes()).ok()
            })
            .expect("some key file opens with the passphrase");
        Decoder {
            root: root.to_path_buf(),
            enc_key: master[..32].to_vec(),
            chunk_id_key: master[32..].try_into().unwrap(),
            blobs: HashMap::new(),
            packs: HashMap::new(),
        }
    }

    fn read(&self, name: &str) -> Vec<u8> {
        fs::read(self.root.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
    }

    /// Object names below `dir` (recursively), ignoring names that start with a dot.
    fn list(&self, dir: &str) -> Vec<String> {
        fn walk(base: &Path, path: &Path, out: &mut Vec<String>) {
            let Ok(entries) = fs::read_dir(path) else {
                return;
            };
            for entry in entries {
                let path = entry.unwrap().path();
                if path.file_name().unwrap().to_string_lossy().starts_with('.') {
                    continue;
                }
                if path.is_dir() {
                    walk(base, &path, out);
                } else {
                    let rel = path.strip_prefix(base).unwrap();
                    out.push(rel.to_string_lossy().into_owned());
                }
            }
        }
        let mut out = Vec::new();
        walk(&self.root, &self.root.join(dir), &mut out);
        out.sort();
        out
    }

    /// A sealed JSON document at a content-named object.
    fn load_json(&self, name: &str, aad: &[u8]) -> Value {
        let bytes = self.read(name);
        check_name(name, &bytes);
        let json =
            open_object(&self.enc_key, aad, &bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        serde_json::from_slice(&json).unwrap_or_else(|e| panic!("{name}: {e}"))
    }

    fn config(&self) -> Value {
        let bytes = self.read("config");
        let json = open_object(&self.enc_key, b"lifeboat/config", &bytes).expect("config opens");
        serde_json::from_slice(&json).unwrap()
    }

    fn pack_name(id: &str) -> String {
        format!("data/{}/{}", &id[..2], id)
    }

    /// Reads every index file and checks each listed pack's own header against it.
    fn load_index(&mut self) {
        for name in self.list("index") {
            let index = self.load_json(&name, b"lifeboat/index");
            for pack in index["packs"].as_array().expect("packs") {
                let pack_id = str_field(pack, "id").to_string();
                let pack_name = Self::pack_name(&pack_id);
                let bytes = self.read(&pack_name);
                check_name(&pack_name, &bytes);
                let from_header = parse_pack_header(&self.enc_key, &bytes);
                let from_index: Vec<_> = pack["blobs"]
                    .as_array()
                    .expect("blobs")
                    .iter()
                    .map(|b| {
                        (
                            str_field(b, "kind").to_string(),
                            u64_field(b, "offset"),
                            u64_field(b, "length"),
                            u64_field(b, "raw_length"),
                            str_field(b, "id").to_string(),
                        )
                    })
                    .collect();
                assert_eq!(
                    from_header, from_index,
                    "{pack_name}: header and index differ"
                );
                for (kind, offset, length, raw_length, id) in from_index {
                    self.blobs.entry(id).or_insert(BlobEntry {
                        pack: pack_name.clone(),
                        kind,
                        offset,
                        length,
                        raw_length,
                    });
                }
                self.packs.insert(pack_name, bytes);
            }
        }
    }

    fn blob_id(&self, data: &[u8]) -> String {
        blake3::keyed_hash(&self.chunk_id_key, data)
            .to_hex()
            .to_string()
    }

    fn read_blob(&self, id: &str) -> Vec<u8> {
        let entry = self
            .blobs
            .get(id)
            .unwrap_or_else(|| panic!("blob {id} is in no index"));
        let pack = &self.packs[&entry.pack];
        let sealed = &pack[entry.offset as usize..(entry.offset + entry.length) as usize];
        let aad = format!("lifeboat/blob/{}", entry.kind);
        let data = open_object(&self.enc_key, aad.as_bytes(), sealed)
            .unwrap_or_else(|e| panic!("blob {id}: {e}"));
        assert_eq!(data.len() as u64, entry.raw_length, "blob {id}: raw length");
        assert_eq!(self.blob_id(&data), id, "blob {id}: keyed BLAKE3 differs");
        data
    }

    /// Walks a tree into `out`, keyed by path relative to the snapshot root.
    fn walk(&self, tree_id: &str, prefix: &Path, out: &mut BTreeMap<PathBuf, Entry>) {
        let tree: Value = serde_json::from_slice(&self.read_blob(tree_id)).unwrap();
        let nodes = tree["nodes"].as_array().expect("nodes");
        let mut previous: Option<Vec<u8>> = None;
        for node in nodes {
            let name = match node.get("name_bytes").and_then(Value::as_str) {
                Some(h) => hex::decode(h).unwrap(),
                None => str_field(node, "name").as_bytes().to_vec(),
            };
            assert!(!name.is_empty() && !name.contains(&b'/') && name != b"." && name != b"..");
            if let Some(prev) = &previous {
                assert!(*prev < name, "tree {tree_id} is not sorted by name bytes");
            }
            previous = Some(name.clone());
            assert_eq!(node["mtime"].as_i64(), Some(MTIME), "tree {tree_id}: mtime");
            let path = prefix.join(String::from_utf8(name).expect("vector names are UTF-8"));
            match str_field(node, "type") {
                "dir" => {
                    out.insert(path.clone(), Entry::Dir);
                    self.walk(str_field(node, "subtree"), &path, out);
                }
                "file" => {
                    let mut content = Vec::new();
                    if let Some(ids) = node.get("content") {
                        for id in ids.as_array().expect("content") {
                            content.extend(self.read_blob(id.as_str().unwrap()));
                        }
                    }
                    assert_eq!(content.len() as u64, u64_field(node, "size"), "{path:?}");
                    let executable = u64_field(node, "mode") & 0o100 != 0;
                    out.insert(
                        path,
                        Entry::File {
                            content,
                            executable,
                        },
                    );
                }
                "symlink" => {
                    out.insert(path, Entry::Symlink(str_field(node, "target").into()));
                }
                other => panic!("unknown node type {other}"),
            }
        }
    }
}

/// The same view of a directory on disk.
fn read_dir_tree(dir: &Path, prefix: &Path, out: &mut BTreeMap<PathBuf, Entry>) {
    for entry in fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let path = prefix.join(entry.file_name());
        let meta = fs::symlink_metadata(entry.path()).unwrap();
        if meta.file_type().is_symlink() {
            let target = fs::read_link(entry.path()).unwrap();
            out.insert(path, Entry::Symlink(target.to_string_lossy().into_owned()));
        } else if meta.is_dir() {
            out.insert(path.clone(), Entry::Dir);
            read_dir_tree(&entry.path(), &path, out);
        } else {
            let content = fs::read(entry.path()).unwrap();
            let executable = meta.permissions().mode() & 0o100 != 0;
            out.insert(
                path,
                Entry::File {
                    content,
                    executable,
                },
            );
        }
    }
}

fn expected_tree() -> BTreeMap<PathBuf, Entry> {
    let mut out = BTreeMap::new();
    out.insert(PathBuf::from("source"), Entry::Dir);
    read_dir_tree(&vectors().join("source"), Path::new("source"), &mut out);
    out
}

#[test]
fn independent_decoder_reads_the_vector_repository() {
    let repo = vectors().join("repo");

    // Keys: the passphrase opens the one key slot, which holds the documented master key.
    let key_bytes = fs::read(repo.join(KEY_FILE)).unwrap();
    check_name(KEY_FILE, &key_bytes);
    let master = unwrap_master_key(&key_bytes, PASSPHRASE.as_bytes()).unwrap();
    assert_eq!(hex::encode(master), MASTER_KEY);
    assert!(unwrap_master_key(&key_bytes, b"wrong passphrase").is_err());
    let chunk_id_key: [u8; 32] = master[32..].try_into().unwrap();
    let seed = blake3::derive_key("lifeboat 2026 chunker seed v1", &chunk_id_key);
    assert_eq!(
        u64::from_le_bytes(seed[..8].try_into().unwrap()),
        CHUNKER_SEED
    );

    let mut decoder = Decoder::open(&repo, PASSPHRASE);

    // Config: format version 1 and the chunker parameters.
    let config = decoder.config();
    assert_eq!(u64_field(&config, "version"), 1);
    assert_eq!(str_field(&config["chunker"], "algorithm"), "fastcdc-2020");
    assert_eq!(u64_field(&config["chunker"], "min_size"), 64 * 1024);
    assert_eq!(u64_field(&config["chunker"], "avg_size"), 256 * 1024);
    assert_eq!(u64_field(&config["chunker"], "max_size"), 1024 * 1024);
    // The AAD binds the kind: the config does not open as any other kind of object.
    assert!(open_raw(&master[..32], b"lifeboat/index", &decoder.read("config")).is_err());

    // Index and packs.
    decoder.load_index();
    assert_eq!(decoder.packs.keys().collect::<Vec<_>>(), vec![PACK]);
    assert_eq!(decoder.list("data"), vec![PACK.to_string()]);

    // The chosen file's blob: its id is the keyed BLAKE3 of its bytes, and it lives in PACK.
    let hello = fs::read(vectors().join("source/hello.txt")).unwrap();
    assert_eq!(decoder.blob_id(&hello), HELLO_BLOB);
    assert_eq!(decoder.blobs[HELLO_BLOB].pack, PACK);
    assert_eq!(decoder.blobs[HELLO_BLOB].kind, "data");
    assert_eq!(decoder.read_blob(HELLO_BLOB), hello);

    // The snapshot and its trees, reassembled file by file.
    let snapshots = decoder.list("snapshots");
    assert_eq!(snapshots, vec![format!("snapshots/{SNAPSHOT}")]);
    let snapshot = decoder.load_json(&snapshots[0], b"lifeboat/snapshot");
    assert_eq!(u64_field(&snapshot, "version"), 1);
    assert_eq!(str_field(&snapshot["source"], "kind"), "files");
    let mut decoded = BTreeMap::new();
    decoder.walk(str_field(&snapshot, "tree"), Path::new(""), &mut decoded);
    assert_eq!(decoded, expected_tree());
    assert_eq!(
        u64_field(&snapshot["summary"], "files"),
        decoded
            .values()
            .filter(|e| matches!(e, Entry::File { .. }))
            .count() as u64
    );
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            fs::copy(entry.path(), &target).unwrap();
        }
    }
}

#[test]
fn lifeboat_restores_the_vector_repository() {
    let scratch = tempfile::tempdir().unwrap();
    let repo = scratch.path().join("repo");
    copy_dir(&vectors().join("repo"), &repo);
    let target = scratch.path().join("restored");
    let run = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_lifeboat"))
            .args(args)
            .env("LIFEBOAT_REPO", &repo)
            .env("LIFEBOAT_PASSWORD", PASSPHRASE)
            .env_remove("LIFEBOAT_PASSWORD_FILE")
            .output()
            .expect("run lifeboat");
        assert!(
            out.status.success(),
            "lifeboat {args:?} failed:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    };
    run(&["verify", "--read-data"]);
    run(&["restore", SNAPSHOT, "--target", target.to_str().unwrap()]);
    let mut restored = BTreeMap::new();
    read_dir_tree(&target, Path::new(""), &mut restored);
    assert_eq!(restored, expected_tree());
    for rel in [
        "source",
        "source/hello.txt",
        "source/sub",
        "source/sub/run.sh",
    ] {
        let meta = fs::metadata(target.join(rel)).unwrap();
        assert_eq!(meta.mtime(), MTIME, "{rel}: restored mtime");
    }
}

#[test]
fn readme_lists_the_values_this_test_checks() {
    let readme = fs::read_to_string(vectors().join("README.md")).unwrap();
    for value in [
        PASSPHRASE,
        KEY_FILE,
        MASTER_KEY,
        &CHUNKER_SEED.to_string(),
        SNAPSHOT,
        HELLO_BLOB,
        PACK,
    ] {
        assert!(readme.contains(value), "README.md does not mention {value}");
    }
}
