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
}

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
        };
        built.map_err(|e| StorageError::BadLocation {
            url: self.display(),
            reason: e.to_string().lines().next().unwrap_or("").to_string(),
        })
    }
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
}
