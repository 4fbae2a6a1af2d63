//! The crypto provider of every TLS connection Lifeboat makes or accepts: rustls with
//! `ring`. reqwest and OpenDAL are built without a provider of their own (an aws-lc-rs
//! build cost more than any other unit), so the process default must be installed before
//! the first HTTPS client is built; `Storage::open_with` and the alert channels do.

/// Installs `ring` as the process's rustls provider; later calls do nothing.
pub fn install_crypto_provider() {
    // An error means a provider is installed already: the same one, by an earlier call.
    let _ = rustls::crypto::ring::default_provider().install_default();
}
