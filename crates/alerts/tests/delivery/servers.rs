//! Tiny real servers on loopback for the tests: an HTTP/1.1 server and an SMTP server,
//! each one thread, recording what they receive. Every socket read has a timeout, so a
//! confused client cannot hang a test.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

const IO_TIMEOUT: Duration = Duration::from_secs(5);

/// Accepts connections until dropped, handing each to `handle`.
struct Acceptor {
    port: u16,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Acceptor {
    fn start(handle: impl Fn(TcpStream) + Send + 'static) -> Acceptor {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        // Non-blocking accept so that Drop can stop the thread.
        listener.set_nonblocking(true).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let thread = std::thread::spawn(move || {
            while !stopping.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        stream.set_nonblocking(false).unwrap();
                        stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
                        stream.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
                        handle(stream);
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        Acceptor {
            port,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Acceptor {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    /// Path and query, as on the request line.
    pub path: String,
    /// Names lower-cased.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Answers every request with one status and body, and closes the connection.
pub struct HttpServer {
    acceptor: Acceptor,
    requests: Arc<Mutex<Vec<Request>>>,
}

impl HttpServer {
    pub fn start(status: u16) -> HttpServer {
        HttpServer::answering(status, "")
    }

    pub fn answering(status: u16, body: &str) -> HttpServer {
        let requests = Arc::new(Mutex::new(Vec::new()));
        let recorded = requests.clone();
        let body = body.to_string();
        let acceptor = Acceptor::start(move |stream| {
            if let Some(request) = read_request(&stream) {
                recorded.lock().unwrap().push(request);
                let reason = match status {
                    200 => "OK",
                    404 => "Not Found",
                    500 => "Internal Server Error",
                    _ => "Whatever",
                };
                let _ = write!(
                    &stream,
                    "HTTP/1.1 {status} {reason}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        HttpServer { acceptor, requests }
    }

    /// `http://127.0.0.1:PORT` followed by `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.acceptor.port)
    }

    pub fn port(&self) -> u16 {
        self.acceptor.port
    }

    pub fn requests(&self) -> Vec<Request> {
        self.requests.lock().unwrap().clone()
    }
}

fn read_request(stream: &TcpStream) -> Option<Request> {
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_string();
    let path = parts.next()?.to_string();
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).ok()?;
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        let (name, value) = line.split_once(':')?;
        headers.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
    }
    let length: usize = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .map_or(0, |(_, v)| v.parse().unwrap());
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    Some(Request {
        method,
        path,
        headers,
        body,
    })
}

/// A port that accepts TCP connections (the kernel completes the handshake into the
/// backlog) but never answers: a hung receiver.
pub struct SilentServer {
    listener: TcpListener,
}

impl SilentServer {
    pub fn start() -> SilentServer {
        SilentServer {
            listener: TcpListener::bind("127.0.0.1:0").unwrap(),
        }
    }

    pub fn port(&self) -> u16 {
        self.listener.local_addr().unwrap().port()
    }
}

/// A port nothing listens on: bound, then released.
pub fn closed_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

#[derive(Debug, Clone, Default)]
pub struct Mail {
    pub auth: Option<String>,
    pub from: String,
    pub to: Vec<String>,
    pub data: String,
}

/// Plain SMTP: greeting, EHLO/HELO, optional AUTH PLAIN, MAIL, RCPT, DATA, QUIT. No
/// STARTTLS is offered, so the client must go on in plain text.
pub struct SmtpServer {
    acceptor: Acceptor,
    mails: Arc<Mutex<Vec<Mail>>>,
    connections: Arc<Mutex<usize>>,
}

#[derive(Clone, Default)]
pub struct SmtpBehaviour {
    /// Advertise and accept AUTH PLAIN.
    pub auth: bool,
    /// Answer the first command starting with `.0` with `.1` instead of 250.
    pub reject: Option<(&'static str, &'static str)>,
}

impl SmtpServer {
    pub fn start(behaviour: SmtpBehaviour) -> SmtpServer {
        let mails = Arc::new(Mutex::new(Vec::new()));
        let connections = Arc::new(Mutex::new(0));
        let (recorded, counted) = (mails.clone(), connections.clone());
        let acceptor = Acceptor::start(move |stream| {
            *counted.lock().unwrap() += 1;
            smtp_session(&stream, &behaviour, &recorded);
        });
        SmtpServer {
            acceptor,
            mails,
            connections,
        }
    }

    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.acceptor.port)
    }

    pub fn port(&self) -> u16 {
        self.acceptor.port
    }

    pub fn mails(&self) -> Vec<Mail> {
        self.mails.lock().unwrap().clone()
    }

    pub fn connections(&self) -> usize {
        *self.connections.lock().unwrap()
    }
}

/// One SMTP conversation. An accepted mail is recorded before the client hears "250",
/// so a test that saw the delivery succeed always finds it (recording it after QUIT
/// raced with the test reading it).
fn smtp_session(
    stream: &TcpStream,
    behaviour: &SmtpBehaviour,
    recorded: &Mutex<Vec<Mail>>,
) -> Option<()> {
    let mut reader = BufReader::new(stream);
    let mut out = stream;
    let mut reply = |text: &str| out.write_all(format!("{text}\r\n").as_bytes()).ok();
    reply("220 test.invalid ESMTP ready")?;
    let mut mail = Mail::default();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).ok()? == 0 {
            return Some(());
        }
        let line = line.trim_end().to_string();
        let upper = line.to_ascii_uppercase();
        if let Some((prefix, answer)) = behaviour.reject {
            if upper.starts_with(prefix) {
                reply(answer)?;
                continue;
            }
        }
        if upper.starts_with("EHLO") {
            if behaviour.auth {
                reply("250-test.invalid")?;
                reply("250 AUTH PLAIN")?;
            } else {
                reply("250 test.invalid")?;
            }
        } else if upper.starts_with("HELO")
            || upper.starts_with("RSET")
            || upper.starts_with("NOOP")
        {
            reply("250 OK")?;
        } else if upper.starts_with("AUTH PLAIN ") {
            mail.auth = Some(line["AUTH PLAIN ".len()..].to_string());
            reply("235 2.7.0 Authentication successful")?;
        } else if upper.starts_with("MAIL FROM:") {
            mail.from = line["MAIL FROM:".len()..].trim().to_string();
            reply("250 OK")?;
        } else if upper.starts_with("RCPT TO:") {
            mail.to.push(line["RCPT TO:".len()..].trim().to_string());
            reply("250 OK")?;
        } else if upper == "DATA" {
            reply("354 End data with <CR><LF>.<CR><LF>")?;
            loop {
                let mut data_line = String::new();
                if reader.read_line(&mut data_line).ok()? == 0 {
                    return None;
                }
                if data_line == ".\r\n" {
                    break;
                }
                mail.data.push_str(&data_line);
            }
            recorded.lock().unwrap().push(mail.clone());
            reply("250 OK queued")?;
        } else if upper == "QUIT" {
            reply("221 Bye");
            return Some(());
        } else {
            reply("500 unknown command")?;
        }
    }
}
