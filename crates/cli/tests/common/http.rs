//! Plain HTTP on loopback for agent tests: a client for the agent's endpoints and a real
//! webhook receiver that records what it is sent.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// GET `path` from `addr`; returns the status code and body (None if nothing answers).
pub fn get(addr: SocketAddr, path: &str, token: Option<&str>) -> Option<(u16, String)> {
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    exchange(
        addr,
        format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Connection: close\r\n\r\n"),
    )
}

/// `method path` with an optional JSON body; returns the status code and body (None if
/// nothing answers within 10 seconds).
pub fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: Option<&serde_json::Value>,
) -> Option<(u16, String)> {
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    exchange(
        addr,
        format!(
            "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        ),
    )
}

/// GET `path` as a browser would send it for a page of `host` (no token).
pub fn get_as(addr: SocketAddr, host: &str, path: &str) -> Option<(u16, String)> {
    exchange(
        addr,
        format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"),
    )
}

/// `method path` with a bearer token and no body; returns the status code and the body
/// parsed as JSON (None if nothing answers).
pub fn call(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
) -> Option<(u16, serde_json::Value)> {
    call_with(addr, method, path, token, None)
}

/// [`call`] with a JSON body.
pub fn call_with(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&serde_json::Value>,
) -> Option<(u16, serde_json::Value)> {
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let (code, answer) = exchange(
        addr,
        format!(
            "{method} {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        ),
    )?;
    let json = serde_json::from_str(&answer).unwrap_or_else(|e| {
        panic!("{method} {path} answered {code} with a body that is not JSON ({e}): {answer}")
    });
    Some((code, json))
}

/// One request on a fresh connection, bounded in time both ways.
fn exchange(addr: SocketAddr, request: String) -> Option<(u16, String)> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .ok()?;
    stream
        .set_write_timeout(Some(Duration::from_secs(10)))
        .ok()?;
    stream.write_all(request.as_bytes()).ok()?;
    let mut text = String::new();
    stream.read_to_string(&mut text).ok()?;
    let status = text.split_whitespace().nth(1)?.parse().ok()?;
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_string())?;
    Some((status, body))
}

/// A webhook endpoint on loopback: every POSTed JSON body is kept.
pub struct WebhookReceiver {
    pub url: String,
    received: Arc<Mutex<Vec<serde_json::Value>>>,
}

impl WebhookReceiver {
    pub fn start() -> WebhookReceiver {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!(
            "http://{}/hooks/secret-token",
            listener.local_addr().unwrap()
        );
        let received = Arc::new(Mutex::new(Vec::new()));
        let sink = received.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                if let Some(body) = read_request(stream) {
                    if let Ok(json) = serde_json::from_slice(&body) {
                        sink.lock().unwrap().push(json);
                    }
                }
            }
        });
        WebhookReceiver { url, received }
    }

    pub fn events(&self) -> Vec<serde_json::Value> {
        self.received.lock().unwrap().clone()
    }

    /// The events whose `event` field is `kind`.
    pub fn of_kind(&self, kind: &str) -> Vec<serde_json::Value> {
        self.events()
            .into_iter()
            .filter(|e| e["event"] == kind)
            .collect()
    }

    /// Waits (bounded) until `wanted` holds for the events received.
    pub fn wait_for(
        &self,
        what: &str,
        limit: Duration,
        wanted: impl Fn(&[serde_json::Value]) -> bool,
    ) {
        let deadline = Instant::now() + limit;
        while !wanted(&self.events()) {
            assert!(
                Instant::now() < deadline,
                "no {what} within {limit:?}; received: {:#?}",
                self.events()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

fn read_request(mut stream: TcpStream) -> Option<Vec<u8>> {
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let mut reader = BufReader::new(stream.try_clone().ok()?);
    let mut length = 0usize;
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).ok()?;
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                length = value.trim().parse().ok()?;
            }
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    stream
        .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        .ok()?;
    Some(body)
}
