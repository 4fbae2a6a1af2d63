//! `postgres://` and `mysql://` URLs as apps write them in `DATABASE_URL`, and the parts
//! of them each client tool needs. The password never leaves this module except as an
//! environment variable or option file for a child process: not in arguments (which any
//! user can read in the process list), not in snapshots, logs or errors.

use lifeboat_repo::snapshot::Engine;
use url::Url;

use crate::{Result, SourceError};

/// Query parameters libpq understands; others (Prisma's `schema`, `connection_limit`,
/// `pgbouncer`, ...) would make every PostgreSQL tool refuse the URL.
const LIBPQ_PARAMETERS: &[&str] = &[
    "host",
    "hostaddr",
    "port",
    "sslmode",
    "sslrootcert",
    "sslcert",
    "sslkey",
    "sslcrl",
    "sslpassword",
    "sslcompression",
    "sslsni",
    "ssl_min_protocol_version",
    "ssl_max_protocol_version",
    "requiressl",
    "channel_binding",
    "gssencmode",
    "krbsrvname",
    "connect_timeout",
    "application_name",
    "options",
    "target_session_attrs",
    "keepalives",
    "keepalives_idle",
    "keepalives_interval",
    "keepalives_count",
    "tcp_user_timeout",
    "service",
    "passfile",
];

#[derive(Debug, Clone)]
pub struct DatabaseUrl {
    pub engine: Engine,
    url: Url,
}

impl DatabaseUrl {
    /// `None` when `text` is not a database URL at all (a path, a `sqlite:` URL).
    pub fn parse(text: &str) -> Option<Result<DatabaseUrl>> {
        let scheme = text.split_once("://")?.0.to_ascii_lowercase();
        let engine = match scheme.as_str() {
            "postgres" | "postgresql" => Engine::Postgres,
            "mysql" | "mariadb" => Engine::Mysql,
            _ => return None,
        };
        Some(
            Url::parse(text)
                .map_err(|e| {
                    SourceError::Invalid(format!(
                        "{}: not a valid {} URL: {e}",
                        redact_text(text),
                        engine.name()
                    ))
                })
                .map(|url| DatabaseUrl { engine, url }),
        )
    }

    /// The database named by the URL's path, if any.
    pub fn database(&self) -> Option<String> {
        let path = self.url.path().trim_start_matches('/');
        (!path.is_empty()).then(|| decode(path))
    }

    pub fn user(&self) -> Option<String> {
        (!self.url.username().is_empty()).then(|| decode(self.url.username()))
    }

    pub fn password(&self) -> Option<String> {
        self.url.password().map(decode)
    }

    pub fn host(&self) -> Option<String> {
        self.url
            .host_str()
            .filter(|h| !h.is_empty())
            .map(|h| h.trim_start_matches('[').trim_end_matches(']').to_string())
    }

    pub fn port(&self) -> Option<u16> {
        self.url.port()
    }

    /// The same server and user with another database.
    pub fn with_database(&self, name: &str) -> DatabaseUrl {
        let mut url = self.url.clone();
        let encoded: String = url::form_urlencoded::byte_serialize(name.as_bytes())
            .collect::<String>()
            .replace('+', "%20");
        url.set_path(&format!("/{encoded}"));
        DatabaseUrl {
            engine: self.engine.clone(),
            url,
        }
    }

    /// The same user, password and database on another host and port (a restored copy).
    pub fn with_address(&self, host: &str, port: u16) -> DatabaseUrl {
        let mut url = self.url.clone();
        let _ = url.set_host(Some(host));
        let _ = url.set_port(Some(port));
        DatabaseUrl {
            engine: self.engine.clone(),
            url,
        }
    }

    /// The URL without its password: safe to show, log and store.
    pub fn redacted(&self) -> String {
        let mut url = self.url.clone();
        let _ = url.set_password(None);
        url.to_string()
    }

    /// The server without password or database, e.g. `postgres://app@db:5432`.
    pub fn server(&self) -> String {
        let mut url = self.url.clone();
        let _ = url.set_password(None);
        url.set_path("");
        url.set_query(None);
        url.to_string().trim_end_matches('/').to_string()
    }

    /// A connection URI for libpq tools (`psql -d`, `pg_dump -d`): no password, and
    /// only the query parameters libpq knows.
    pub fn libpq_uri(&self) -> String {
        let mut url = self.url.clone();
        let _ = url.set_password(None);
        let kept: Vec<(String, String)> = self
            .url
            .query_pairs()
            .filter(|(k, _)| LIBPQ_PARAMETERS.contains(&k.as_ref()))
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        if kept.is_empty() {
            url.set_query(None);
        } else {
            url.query_pairs_mut().clear().extend_pairs(kept);
        }
        url.to_string()
    }
}

fn decode(text: &str) -> String {
    url::form_urlencoded::parse(format!("x={}", text.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

/// Hides the password of a URL that may not even parse, for error messages.
pub fn redact_text(text: &str) -> String {
    let Some((scheme, rest)) = text.split_once("://") else {
        return text.to_string();
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{scheme}://{user}@{host}{tail}")
        }
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> DatabaseUrl {
        DatabaseUrl::parse(text).unwrap().unwrap()
    }

    #[test]
    fn passwords_never_reach_what_is_shown() {
        let url =
            parse("postgres://app:s%40cret@db.example:6543/shop?sslmode=require&schema=public");
        assert_eq!(url.password().as_deref(), Some("s@cret"));
        assert_eq!(url.user().as_deref(), Some("app"));
        assert_eq!(url.database().as_deref(), Some("shop"));
        assert_eq!(url.port(), Some(6543));
        for shown in [url.redacted(), url.server(), url.libpq_uri()] {
            assert!(!shown.contains("cret"), "{shown}");
        }
        assert_eq!(url.server(), "postgres://app@db.example:6543");
        assert_eq!(
            url.libpq_uri(),
            "postgres://app@db.example:6543/shop?sslmode=require"
        );
        assert_eq!(redact_text("mysql://root:pw@x:1/db"), "mysql://root@x:1/db");
    }

    #[test]
    fn other_databases_on_the_same_server() {
        let url = parse("mysql://root@127.0.0.1:3306/app");
        assert_eq!(url.engine, Engine::Mysql);
        let other = url.with_database("my db");
        assert_eq!(other.database().as_deref(), Some("my db"));
        assert!(DatabaseUrl::parse("./uploads").is_none());
        assert!(DatabaseUrl::parse("sqlite:./app.db").is_none());
        assert!(DatabaseUrl::parse("postgres://[bad").unwrap().is_err());
    }
}
