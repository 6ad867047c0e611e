//! A stand-in for the Hugging Face Hub on 127.0.0.1: serves model folders under the Hub's URL
//! scheme (`/{org}/{name}/resolve/{revision}/{file}`) with the headers `hf-hub` reads (ETag,
//! X-Repo-Commit, Content-Range for byte ranges) and the Hub's error codes (`X-Error-Code:
//! RepositoryNotFound`, `EntryNotFound`, `GatedRepo`). Every request line is logged.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// One repo the server knows.
pub struct Repo {
    /// The folder whose files it serves.
    pub dir: PathBuf,
    /// A token `Authorization: Bearer` must carry (a gated repo), if any.
    pub token: Option<String>,
}

/// A running server; it lives as long as the test process.
pub struct Server {
    /// `http://127.0.0.1:PORT`.
    pub endpoint: String,
    log: Arc<Mutex<Vec<String>>>,
}

impl Server {
    /// Starts serving `repos` (by id) on a free port.
    pub fn start(repos: HashMap<String, Repo>) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let log = Arc::new(Mutex::new(Vec::new()));
        let (repos, log2) = (Arc::new(repos), log.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (repos, log) = (repos.clone(), log2.clone());
                std::thread::spawn(move || serve(stream, &repos, &log));
            }
        });
        Server { endpoint, log }
    }

    /// The request lines so far ("GET /acme/x/resolve/main/config.json").
    pub fn requests(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }
}

/// An endpoint where nothing listens (a network failure).
pub fn dead_endpoint() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    format!("http://127.0.0.1:{port}")
}

fn respond(stream: &mut TcpStream, status: &str, headers: &[(String, String)], body: &[u8]) {
    let mut head = format!("HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n", body.len());
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    let _ = stream.write_all(head.as_bytes());
    let _ = stream.write_all(body);
}

fn error(stream: &mut TcpStream, status: &str, code: &str) {
    respond(stream, status, &[("X-Error-Code".into(), code.into())], code.as_bytes());
}

/// A stable 64-bit FNV-1a digest of the bytes, as hex (the file's ETag).
fn digest(bytes: &[u8]) -> String {
    let h = bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ *b as u64).wrapping_mul(0x100_0000_01b3));
    format!("{h:016x}")
}

fn serve(mut stream: TcpStream, repos: &HashMap<String, Repo>, log: &Mutex<Vec<String>>) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut request = String::new();
    if reader.read_line(&mut request).is_err() {
        return;
    }
    let mut headers = HashMap::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 || line.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
    }
    let request = request.trim().trim_end_matches(" HTTP/1.1").to_string();
    log.lock().unwrap().push(request.clone());
    let path = request.strip_prefix("GET /").unwrap_or("");
    // org/name/resolve/revision/file...
    let parts: Vec<&str> = path.splitn(5, '/').collect();
    if parts.len() < 5 || parts[2] != "resolve" {
        return error(&mut stream, "404 Not Found", "RepositoryNotFound");
    }
    let Some(repo) = repos.get(&format!("{}/{}", parts[0], parts[1])) else {
        return error(&mut stream, "404 Not Found", "RepositoryNotFound");
    };
    if let Some(token) = &repo.token {
        if headers.get("authorization") != Some(&format!("Bearer {token}")) {
            return error(&mut stream, "401 Unauthorized", "GatedRepo");
        }
    }
    let Ok(bytes) = std::fs::read(repo.dir.join(parts[4])) else {
        return error(&mut stream, "404 Not Found", "EntryNotFound");
    };
    let size = bytes.len();
    let start = headers
        .get("range")
        .and_then(|r| r.strip_prefix("bytes="))
        .and_then(|r| r.split('-').next())
        .and_then(|s| s.parse::<usize>().ok())
        .unwrap_or(0)
        .min(size);
    let end = match headers.get("range").and_then(|r| r.split('-').nth(1)).and_then(|s| s.parse::<usize>().ok()) {
        Some(e) => (e + 1).min(size),
        None => size,
    };
    let commit = format!("{:0>40}", digest(parts[3].as_bytes()));
    let reply = [
        ("ETag".to_string(), format!("\"{}\"", digest(&bytes))),
        ("X-Repo-Commit".to_string(), commit),
        ("Content-Range".to_string(), format!("bytes {start}-{}/{size}", end.max(start + 1) - 1)),
    ];
    respond(&mut stream, "206 Partial Content", &reply, &bytes[start..end]);
}
