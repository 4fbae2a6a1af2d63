//! The server's certificate: from PEM files, or a self-signed one kept in the state
//! directory (so its fingerprint, which clients pin, stays the same across restarts).

use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::Arc;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::ServerError;

pub struct Identity {
    pub config: Arc<rustls::ServerConfig>,
    /// `sha256:<hex>` of the end-entity certificate.
    pub fingerprint: String,
}

fn tls_error(what: &str, e: impl std::fmt::Display) -> ServerError {
    ServerError::Tls(format!("{what}: {e}"))
}

/// Loads a certificate chain and its private key from PEM files.
pub fn from_files(cert: &Path, key: &Path) -> Result<Identity, ServerError> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect())
        .map_err(|e| {
            tls_error(
                &format!("cannot read certificates from {}", cert.display()),
                e,
            )
        })?;
    if certs.is_empty() {
        return Err(ServerError::Tls(format!(
            "{} holds no PEM certificate",
            cert.display()
        )));
    }
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| {
        tls_error(
            &format!("cannot read a private key from {}", key.display()),
            e,
        )
    })?;
    identity(certs, key)
}

/// The self-signed certificate in `state_dir` (`cert.pem`, `key.pem`), made on first use
/// for `names` (host names and addresses the clients may use).
pub fn self_signed(state_dir: &Path, names: Vec<String>) -> Result<Identity, ServerError> {
    let cert_path = state_dir.join("cert.pem");
    let key_path = state_dir.join("key.pem");
    if !cert_path.exists() || !key_path.exists() {
        crate::state::private_dir(state_dir)?;
        let made = rcgen::generate_simple_self_signed(names)
            .map_err(|e| tls_error("cannot make a self-signed certificate", e))?;
        write_private(&key_path, made.signing_key.serialize_pem().as_bytes())?;
        write_private(&cert_path, made.cert.pem().as_bytes())?;
    }
    from_files(&cert_path, &key_path)
}

fn write_private(path: &Path, bytes: &[u8]) -> Result<(), ServerError> {
    use std::io::Write;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .and_then(|mut f| f.write_all(bytes).and_then(|()| f.sync_all()))
        .map_err(|e| ServerError::Io(format!("cannot write {}: {e}", path.display())))
}

fn identity(
    certs: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> Result<Identity, ServerError> {
    let fingerprint = lifeboat_storage::certificate_fingerprint(&certs[0]);
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| tls_error("TLS setup", e))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| tls_error("the certificate and key do not work together", e))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Identity {
        config: Arc::new(config),
        fingerprint,
    })
}
