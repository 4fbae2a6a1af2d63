//! `postgres://` and `mysql://` URLs as apps write them in `DATABASE_URL`, and the parts
//! of them each client tool needs. The password never leaves this module except as an
//! environment variable or option file for a child process: not in arguments (which any
//! user can read in the process list), not in snapshots, logs or errors.
//!
//! Secrets are taken out of the URL when it is parsed: the user-info password and the
//! query parameters that carry one (`password`, and for PostgreSQL `sslpassword` and
//! `passfile`). Everything that prints, stores or passes on a URL works from what is left,
//! so no later method can forget to drop them.

use std::ffi::OsString;
use std::sync::Arc;

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
];

/// Query parameters that are secrets (or say where one is): used, never shown or stored.
const SECRET_PARAMETERS: &[&str] = &["password", "sslpassword", "passfile"];

/// The service name under which [`Secrets::service_file`] holds `sslpassword` (libpq has
/// no environment variable for it).
const SERVICE: &str = "lifeboat";

#[derive(Clone)]
pub struct DatabaseUrl {
    pub engine: Engine,
    /// Without any secret: safe to print.
    url: Url,
    /// Shared by every URL derived from this one (other databases, another address).
    secrets: Arc<Secrets>,
}

#[derive(Default)]
struct Secrets {
    password: Option<String>,
    passfile: Option<String>,
    /// A private libpq service file holding `sslpassword`, deleted when the last URL
    /// that needs it is dropped.
    service_file: Option<tempfile::NamedTempFile>,
}

impl std::fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DatabaseUrl")
            .field("engine", &self.engine)
            .field("url", &self.redacted())
            .finish()
    }
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
                .and_then(|url| DatabaseUrl::without_secrets(engine, url)),
        )
    }

    /// Moves the password and the secret query parameters out of `url`.
    fn without_secrets(engine: Engine, mut url: Url) -> Result<DatabaseUrl> {
        let mut secrets = Secrets {
            password: url.password().map(decode),
            ..Secrets::default()
        };
        let _ = url.set_password(None);
        let mut sslpassword = None;
        // Pairs are kept as written: re-encoding would turn spaces into `+`, which libpq
        // does not read as a space.
        let mut kept: Vec<String> = Vec::new();
        for raw in url
            .query()
            .unwrap_or("")
            .split('&')
            .filter(|p| !p.is_empty())
        {
            // Percent-decoded only, as libpq does: a `+` stays a `+`.
            let (key, value) = raw.split_once('=').unwrap_or((raw, ""));
            let (key, value) = (decode(key), decode(value));
            match key.as_str() {
                // libpq lets the query override the user info; so do we.
                "password" => secrets.password = Some(value),
                // MySQL tools have no use for these; they are dropped all the same.
                "sslpassword" if engine == Engine::Postgres => sslpassword = Some(value),
                "passfile" if engine == Engine::Postgres => secrets.passfile = Some(value),
                k if SECRET_PARAMETERS.contains(&k) => {}
                _ => kept.push(raw.to_string()),
            }
        }
        if url.query().is_some() {
            url.set_query((!kept.is_empty()).then(|| kept.join("&")).as_deref());
        }
        if let Some(sslpassword) = sslpassword {
            secrets.service_file = Some(service_file(&url, &sslpassword)?);
        }
        Ok(DatabaseUrl {
            engine,
            url,
            secrets: Arc::new(secrets),
        })
    }

    /// The database named by the URL's path, if any.
    pub fn database(&self) -> Option<String> {
        let path = self.url.path().trim_start_matches('/');
        (!path.is_empty()).then(|| decode(path))
    }

    pub fn user(&self) -> Option<String> {
        (!self.url.username().is_empty()).then(|| decode(self.url.username()))
    }

    /// The password, from the user info or the query string.
    pub fn password(&self) -> Option<String> {
        self.secrets.password.clone()
    }

    /// The environment a libpq tool (`psql`, `pg_dump`, `pg_basebackup`) needs for this
    /// URL's secrets: `PGPASSWORD`, `PGPASSFILE`, and a private service file for
    /// `sslpassword`, which libpq reads from no variable.
    pub fn libpq_env(&self) -> Vec<(&'static str, OsString)> {
        let mut env = Vec::new();
        if let Some(password) = &self.secrets.password {
            env.push(("PGPASSWORD", password.into()));
        }
        if let Some(passfile) = &self.secrets.passfile {
            env.push(("PGPASSFILE", passfile.into()));
        }
        if let Some(file) = &self.secrets.service_file {
            env.push(("PGSERVICEFILE", file.path().into()));
            env.push(("PGSERVICE", SERVICE.into()));
        }
        env
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
            secrets: self.secrets.clone(),
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
            secrets: self.secrets.clone(),
        }
    }

    /// The URL without its secrets: safe to show, log and store.
    pub fn redacted(&self) -> String {
        self.url.to_string()
    }

    /// The server without password or database, e.g. `postgres://app@db:5432`.
    pub fn server(&self) -> String {
        let mut url = self.url.clone();
        url.set_path("");
        url.set_query(None);
        url.to_string().trim_end_matches('/').to_string()
    }

    /// A connection URI for libpq tools (`psql -d`, `pg_dump -d`): no secrets (they go
    /// by [`DatabaseUrl::libpq_env`]), and only the query parameters libpq knows.
    pub fn libpq_uri(&self) -> String {
        let mut url = self.url.clone();
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

/// A private (0600) libpq service file with the `sslpassword` of `url`. A `service`
/// named in the URL would be looked up in this file instead of the user's, so the two
/// cannot be combined.
fn service_file(url: &Url, sslpassword: &str) -> Result<tempfile::NamedTempFile> {
    use std::io::Write;
    if url.query_pairs().any(|(k, _)| k == "service") {
        return Err(SourceError::Invalid(format!(
            "{url}: sslpassword cannot be combined with service=; put sslpassword in the service file"
        )));
    }
    if sslpassword.contains(['\n', '\r']) {
        return Err(SourceError::Invalid(format!(
            "{url}: sslpassword cannot hold a line break"
        )));
    }
    let mut file = tempfile::Builder::new()
        .prefix("lifeboat-pg-service-")
        .tempfile()
        .map_err(|e| SourceError::io(std::env::temp_dir(), e))?;
    writeln!(file, "[{SERVICE}]\nsslpassword={sslpassword}")
        .and_then(|_| file.flush())
        .map_err(|e| SourceError::io(file.path(), e))?;
    Ok(file)
}

fn decode(text: &str) -> String {
    url::form_urlencoded::parse(format!("x={}", text.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

/// Hides the password of a URL that may not even parse, for error messages, and its query
/// string, which may hold one too. A password may hold any character in a URL that does
/// not parse, so everything up to the last `@` is taken for the user info.
pub fn redact_text(text: &str) -> String {
    let Some((scheme, rest)) = text.split_once("://") else {
        return text.to_string();
    };
    let (user, host) = match rest.rsplit_once('@') {
        Some((userinfo, host)) => {
            // An `@` in the query would make the path and query look like user info.
            let user = userinfo.split([':', '/', '?']).next().unwrap_or("");
            (format!("{user}@"), host)
        }
        None => (String::new(), rest),
    };
    let host = host.split_once('?').map_or(host, |(before, _)| before);
    format!("{scheme}://{user}{host}")
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

    #[test]
    fn secrets_in_the_query_string_are_used_but_never_shown() {
        let url = parse(
            "postgres://app@db:5432/shop?sslmode=require&password=q%26pw&passfile=%2Fsecret%2Fpgpass&sslpassword=keypw",
        );
        assert_eq!(url.password().as_deref(), Some("q&pw"));
        let derived = url.with_database("other").with_address("127.0.0.1", 1);
        for shown in [
            url.redacted(),
            url.server(),
            url.libpq_uri(),
            derived.redacted(),
            format!("{url:?}"),
        ] {
            for secret in ["q%26pw", "q&pw", "pgpass", "keypw", "password"] {
                assert!(!shown.contains(secret), "{shown}");
            }
        }
        assert_eq!(
            url.redacted(),
            "postgres://app@db:5432/shop?sslmode=require"
        );
        let env: std::collections::HashMap<_, _> = derived.libpq_env().into_iter().collect();
        assert_eq!(env["PGPASSWORD"], "q&pw");
        assert_eq!(env["PGPASSFILE"], "/secret/pgpass");
        assert_eq!(env["PGSERVICE"], "lifeboat");
        let file = std::path::Path::new(&env["PGSERVICEFILE"]);
        let text = std::fs::read_to_string(file).unwrap();
        assert_eq!(text, "[lifeboat]\nsslpassword=keypw\n");
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(file.metadata().unwrap().permissions().mode() & 0o777, 0o600);
        // The file lives as long as a URL that needs it.
        let path = file.to_path_buf();
        drop((url, derived));
        assert!(!path.exists());

        let mysql = parse("mysql://root@db/app?password=p+w&ssl-mode=REQUIRED");
        assert_eq!(mysql.password().as_deref(), Some("p+w"));
        assert_eq!(mysql.redacted(), "mysql://root@db/app?ssl-mode=REQUIRED");
        assert!(
            DatabaseUrl::parse("postgres://db/x?service=s&sslpassword=p")
                .unwrap()
                .is_err()
        );
    }

    #[test]
    fn urls_that_do_not_parse_are_shown_without_secrets() {
        for (text, shown) in [
            ("mysql://root:pw@x:1/db", "mysql://root@x:1/db"),
            ("postgres://u:p?w@d@h/db?password=pw", "postgres://u@h/db"),
            ("postgres://h/db?password=pw", "postgres://h/db"),
            ("postgres://h/db?password=pw&app=a@b", "postgres://h@b"),
            ("postgres://[bad", "postgres://[bad"),
        ] {
            assert_eq!(redact_text(text), shown);
        }
    }
}
