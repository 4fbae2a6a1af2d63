//! `lifeboat serve`: one repository (a local directory or any store `Storage::open`
//! accepts) served over HTTPS to Lifeboat clients, each with its own token and role
//! (`read`, `append`, `admin`; see `roles.rs`). The protocol is in docs/SERVER.md; the
//! client is `lifeboat_storage`'s `lifeboat+https://` location.
//!
//! The server only moves objects: it never holds a repository key and cannot read what
//! it stores. What it adds is the one thing object stores do not offer per client: a
//! token that can add backups but never delete or change them.

mod listener;
pub mod names;
pub mod roles;
mod service;
mod state;
mod tls;
pub mod tokens;

use std::net::SocketAddr;
use std::path::PathBuf;

pub use roles::Role;

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// A command line or input that cannot work as given.
    #[error("{0}")]
    Usage(String),
    #[error("{0}")]
    Io(String),
    #[error("{0}")]
    Tls(String),
    #[error(transparent)]
    Storage(#[from] lifeboat_storage::StorageError),
}

pub struct ServeOptions {
    /// The repository: a path or any URL `Storage::open` accepts.
    pub repo: String,
    pub listen: SocketAddr,
    /// Where the server keeps its own files (self-signed certificate, lock owners).
    pub state_dir: PathBuf,
    /// The token file.
    pub tokens: PathBuf,
    /// A certificate chain and its key (PEM); `None` for the self-signed one.
    pub certificate: Option<(PathBuf, PathBuf)>,
}

/// What a started server tells its caller (who prints it).
pub struct Ready {
    pub address: SocketAddr,
    pub fingerprint: String,
    pub self_signed: bool,
    pub tokens: usize,
}

/// Serves until SIGINT or SIGTERM. `ready` is called once the port is bound.
pub fn serve(options: ServeOptions, ready: impl FnOnce(&Ready)) -> Result<(), ServerError> {
    let storage = lifeboat_storage::Storage::open(&options.repo)?;
    state::private_dir(&options.state_dir)?;
    let identity = match &options.certificate {
        Some((cert, key)) => tls::from_files(cert, key)?,
        None => tls::self_signed(&options.state_dir, certificate_names(options.listen))?,
    };
    let owners = state::LockOwners::open(&options.state_dir)?;
    let token_count = tokens::load(&options.tokens)?.len();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("lifeboat-serve")
        .build()
        .map_err(|e| ServerError::Io(format!("cannot start the server's runtime: {e}")))?;
    runtime.block_on(async {
        let tcp = tokio::net::TcpListener::bind(options.listen)
            .await
            .map_err(|e| ServerError::Io(format!("cannot listen on {}: {e}", options.listen)))?;
        let listener = listener::TlsListener::start(tcp, identity.config.clone())
            .map_err(|e| ServerError::Io(format!("cannot listen: {e}")))?;
        ready(&Ready {
            address: axum::serve::Listener::local_addr(&listener)
                .map_err(|e| ServerError::Io(e.to_string()))?,
            fingerprint: identity.fingerprint.clone(),
            self_signed: options.certificate.is_none(),
            tokens: token_count,
        });
        let app = service::App::new(storage, options.tokens.clone(), owners);
        axum::serve(listener, service::router(app))
            .with_graceful_shutdown(shutdown_signal())
            .await
            .map_err(|e| ServerError::Io(format!("the server stopped: {e}")))
    })
}

/// Names the self-signed certificate is made for: loopback, this host and the address
/// listened on. Clients that pin the fingerprint do not check names; others cannot trust
/// a self-signed certificate anyway, so these are for tools like curl.
fn certificate_names(listen: SocketAddr) -> Vec<String> {
    let mut names = vec![
        "localhost".to_string(),
        "127.0.0.1".to_string(),
        "::1".to_string(),
    ];
    let ip = listen.ip();
    if !ip.is_unspecified() && !ip.is_loopback() {
        names.push(ip.to_string());
    }
    names
}

async fn shutdown_signal() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate => {}
    }
}
