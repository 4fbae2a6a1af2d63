//! Parsing repository URLs into OpenDAL operators.

use std::path::{Path, PathBuf};

use opendal::Operator;

use crate::{Result, StorageError};

/// Where a repository lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// A directory on a local (or mounted) filesystem.
    Local(PathBuf),
    /// An OpenDAL object-store service: `scheme://bucket/prefix?key=value&...`.
    Service {
        scheme: String,
        bucket: String,
        prefix: String,
        options: Vec<(String, String)>,
    },
    /// A `lifeboat serve` server: `lifeboat+https://host:port`, one repository per server.
    /// The token comes from `LIFEBOAT_SERVER_TOKEN`, never from the URL; the certificate is
    /// checked against the system's roots, or against a pinned SHA-256 fingerprint
    /// (`?fingerprint=sha256:...` or `LIFEBOAT_SERVER_FINGERPRINT`).
    Server {
        /// `host:port` (a bracketed IPv6 address stays bracketed).
        authority: String,
        /// The pinned fingerprint from the URL, normalised (`sha256:` and 64 lowercase hex).
        fingerprint: Option<String>,
    },
}

/// The scheme of a `lifeboat serve` repository.
pub const SERVER_SCHEME: &str = "lifeboat+https";
const SERVER_DEFAULT_PORT: u16 = 8443;

const SERVICES: &[&str] = &["s3", "gcs", "azblob"];

impl Location {
    /// Parses `/abs/path`, `rel/path`, `file:///abs/path`, `s3://bucket/prefix`,
    /// `gcs://bucket/prefix` or `azblob://container/prefix`, optionally followed by
    /// `?option=value&...` passed to the OpenDAL service as configuration.
    pub fn parse(url: &str) -> Result<Location> {
        let bad = |reason: &str| StorageError::BadLocation {
            url: url.to_string(),
            reason: reason.to_string(),
        };
        if url.trim().is_empty() {
            return Err(bad("it is empty"));
        }
        if let Some(path) = url.strip_prefix("file://") {
            if !path.starts_with('/') {
                return Err(bad("file:// URLs need an absolute path (file:///...)"));
            }
            return Ok(Location::Local(PathBuf::from(path)));
        }
        let Some((scheme, rest)) = url.split_once("://") else {
            return Ok(Location::Local(absolute(Path::new(url))));
        };
        if scheme == SERVER_SCHEME {
            // The URL is shown without user info and query: either may hold a token.
            return parse_server(rest).map_err(|reason| StorageError::BadLocation {
                url: format!(
                    "{SERVER_SCHEME}://{}",
                    rest.split(['?', '/'])
                        .next()
                        .unwrap_or("")
                        .rsplit('@')
                        .next()
                        .unwrap_or("")
                ),
                reason,
            });
        }
        if !SERVICES.contains(&scheme) {
            return Err(bad(&format!(
                "unknown scheme {scheme:?}; use a path, file://, {}",
                SERVICES
                    .iter()
                    .map(|s| format!("{s}://"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
        let (bucket, prefix) = path.split_once('/').unwrap_or((path, ""));
        if bucket.is_empty() {
            return Err(bad("the bucket name is missing"));
        }
        let mut options = Vec::new();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair
                .split_once('=')
                .ok_or_else(|| bad(&format!("option {pair:?} is not key=value")))?;
            options.push((key.to_string(), value.to_string()));
        }
        Ok(Location::Service {
            scheme: scheme.to_string(),
            bucket: bucket.to_string(),
            prefix: format!("/{}", prefix.trim_matches('/')),
            options,
        })
    }

    /// A printable form without the query string (which may hold credentials).
    pub fn display(&self) -> String {
        match self {
            Location::Local(path) => path.display().to_string(),
            Location::Service {
                scheme,
                bucket,
                prefix,
                ..
            } => format!("{scheme}://{bucket}{prefix}"),
            Location::Server { authority, .. } => format!("{SERVER_SCHEME}://{authority}"),
        }
    }

    pub(crate) fn operator(&self) -> Result<Operator> {
        let built = match self {
            Location::Local(root) => {
                let root_str = root.to_string_lossy();
                let builder = opendal::services::Fs::default()
                    .root(&root_str)
                    .atomic_write_dir(&local_tmp_dir(root).to_string_lossy());
                Operator::new(builder)
            }
            Location::Service {
                scheme,
                bucket,
                prefix,
                options,
            } => {
                let mut config: Vec<(String, String)> = vec![
                    (bucket_key(scheme).to_string(), bucket.clone()),
                    ("root".to_string(), prefix.clone()),
                ];
                config.extend(options.iter().cloned());
                match scheme.as_str() {
                    "s3" => {
                        // Path-style addressing is what self-hosted stores (Garage, MinIO)
                        // expect; AWS accepts it too.
                        if std::env::var("AWS_REGION").is_err()
                            && std::env::var("AWS_DEFAULT_REGION").is_err()
                            && !config.iter().any(|(k, _)| k == "region")
                        {
                            config.push(("region".into(), "us-east-1".into()));
                        }
                        Operator::from_iter::<opendal::services::S3>(config)
                    }
                    "gcs" => Operator::from_iter::<opendal::services::Gcs>(config),
                    "azblob" => Operator::from_iter::<opendal::services::Azblob>(config),
                    _ => unreachable!("scheme validated in parse"),
                }
            }
            Location::Server { .. } => {
                return Err(StorageError::BadLocation {
                    url: self.display(),
                    reason: "a Lifeboat server is not an OpenDAL service".into(),
                })
            }
        };
        built.map_err(|e| StorageError::BadLocation {
            url: self.display(),
            reason: e.to_string().lines().next().unwrap_or("").to_string(),
        })
    }
}

/// `host[:port][/][?fingerprint=sha256:...]` after `lifeboat+https://`.
fn parse_server(rest: &str) -> std::result::Result<Location, String> {
    let (authority_path, query) = rest.split_once('?').unwrap_or((rest, ""));
    let (authority, path) = authority_path
        .split_once('/')
        .unwrap_or((authority_path, ""));
    if authority.contains('@') {
        return Err(
            "a token in the URL is refused (URLs end up in logs and process lists): give it in LIFEBOAT_SERVER_TOKEN".into(),
        );
    }
    if !path.trim_matches('/').is_empty() {
        return Err("a server serves one repository: give no path after host:port".into());
    }
    if authority.is_empty() {
        return Err("the host is missing".into());
    }
    let has_port = match authority.rfind(']') {
        Some(end) => authority[end..].contains(':'),
        None => authority.contains(':'),
    };
    let authority = if has_port {
        let (host, port) = authority.rsplit_once(':').expect("has a colon");
        if host.is_empty() || port.parse::<u16>().is_err() {
            return Err(format!("{authority:?} is not host:port"));
        }
        authority.to_string()
    } else {
        format!("{authority}:{SERVER_DEFAULT_PORT}")
    };
    let mut fingerprint = None;
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        match pair.split_once('=') {
            Some(("fingerprint", value)) => fingerprint = Some(parse_fingerprint(value)?),
            Some((key, _)) if key.to_ascii_lowercase().contains("token") => {
                return Err(
                    "a token in the URL is refused (URLs end up in logs and process lists): give it in LIFEBOAT_SERVER_TOKEN".into(),
                )
            }
            _ => return Err(format!("unknown option {pair:?}; the only one is fingerprint=sha256:...")),
        }
    }
    Ok(Location::Server {
        authority,
        fingerprint,
    })
}

/// Normalises a certificate fingerprint: `sha256:` then 64 hex digits (colons between
/// pairs, as some tools print them, and upper case are accepted).
pub fn parse_fingerprint(text: &str) -> std::result::Result<String, String> {
    let hex: String = text
        .trim()
        .strip_prefix("sha256:")
        .or_else(|| text.trim().strip_prefix("SHA256:"))
        .ok_or_else(|| format!("fingerprint {text:?} does not start with sha256:"))?
        .chars()
        .filter(|c| *c != ':')
        .map(|c| c.to_ascii_lowercase())
        .collect();
    if hex.len() != 64 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(format!(
            "fingerprint {text:?} is not sha256: and 64 hex digits"
        ));
    }
    Ok(format!("sha256:{hex}"))
}

fn bucket_key(scheme: &str) -> &'static str {
    match scheme {
        "azblob" => "container",
        _ => "bucket",
    }
}

fn absolute(path: &Path) -> PathBuf {
    if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()
            .map(|cwd| cwd.join(path))
            .unwrap_or_else(|_| path.to_path_buf())
    }
}

/// Where OpenDAL writes a local repository's objects before renaming them into place.
pub(crate) fn local_tmp_dir(root: &Path) -> PathBuf {
    root.join(".tmp")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_locations() {
        assert_eq!(
            Location::parse("/var/backups").unwrap(),
            Location::Local("/var/backups".into())
        );
        assert_eq!(
            Location::parse("file:///srv/repo").unwrap(),
            Location::Local("/srv/repo".into())
        );
        let s3 =
            Location::parse("s3://bucket/some/prefix/?enable_virtual_host_style=true").unwrap();
        assert_eq!(
            s3,
            Location::Service {
                scheme: "s3".into(),
                bucket: "bucket".into(),
                prefix: "/some/prefix".into(),
                options: vec![("enable_virtual_host_style".into(), "true".into())],
            }
        );
        assert_eq!(s3.display(), "s3://bucket/some/prefix");
        assert!(Location::parse("ftp://x/y").is_err());
        assert!(Location::parse("s3:///prefix").is_err());
        assert!(Location::parse("file://relative").is_err());
        assert!(Location::parse("").is_err());
    }

    #[test]
    fn parses_server_locations_and_refuses_tokens_in_them() {
        let fp = format!("sha256:{}", "AB".repeat(32));
        let server = Location::parse(&format!(
            "lifeboat+https://backup.lan:9000/?fingerprint={fp}"
        ))
        .unwrap();
        assert_eq!(
            server,
            Location::Server {
                authority: "backup.lan:9000".into(),
                fingerprint: Some(format!("sha256:{}", "ab".repeat(32))),
            }
        );
        assert_eq!(server.display(), "lifeboat+https://backup.lan:9000");
        assert_eq!(
            Location::parse("lifeboat+https://[::1]").unwrap().display(),
            "lifeboat+https://[::1]:8443"
        );
        for (url, reason) in [
            ("lifeboat+https://app1:secret@host:1", "token in the URL"),
            ("lifeboat+https://host:1/?token=x", "token in the URL"),
            ("lifeboat+https://host:1/repo", "one repository"),
            ("lifeboat+https://host:x", "host:port"),
            ("lifeboat+https://host:1?fingerprint=md5:00", "sha256"),
            ("lifeboat+https://host:1?colour=red", "unknown option"),
        ] {
            let err = Location::parse(url).unwrap_err().to_string();
            assert!(err.contains(reason), "{url}: {err}");
            assert!(!err.contains("secret"), "{err}");
        }
    }
}
