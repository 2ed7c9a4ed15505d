//! A minimal HTTP/1.1 client for the agent's Unix socket: one request per connection, JSON in
//! and out. Enough for the CLI without an HTTP stack.

use std::{
    io::{BufRead as _, BufReader, Read as _, Write as _},
    os::unix::net::UnixStream,
    path::Path,
    time::Duration,
};

use serde_json::Value;

use super::error::{ApiError, code};

/// Whether an agent answers on `socket`.
pub fn is_running(socket: &Path) -> bool {
    UnixStream::connect(socket).is_ok()
}

/// POST `body` to `/api/<action>` and decode the answer.
pub fn call(socket: &Path, action: &str, body: &str) -> Result<Value, ApiError> {
    let (status, text) = request(socket, "POST", &format!("/api/{action}"), body)
        .map_err(|e| ApiError::new(503, code::UNAVAILABLE, format!("talking to the agent at {}: {e}", socket.display())))?;
    let value: Value = serde_json::from_str(&text).unwrap_or(Value::String(text));
    if status == 200 {
        return Ok(value);
    }
    let mut err: ApiError = serde_json::from_value(value.clone())
        .unwrap_or_else(|_| ApiError::new(status, code::INTERNAL, format!("agent answered {status}: {value}")));
    err.status = status;
    Err(err)
}

/// One HTTP request; returns (status, body).
pub fn request(socket: &Path, method: &str, path: &str, body: &str) -> std::io::Result<(u16, String)> {
    let mut stream = UnixStream::connect(socket)?;
    stream.set_read_timeout(Some(Duration::from_secs(300)))?;
    // One write: a server that answers without reading the body (an endpoint that takes none)
    // and closes must not meet the body's bytes still being written (EPIPE).
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: vpc\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes())?;
    let mut reader = BufReader::new(stream);
    let mut status_line = String::new();
    reader.read_line(&mut status_line)?;
    let status: u16 = status_line.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let mut length = None;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 || line == "\r\n" {
            break;
        }
        if let Some((name, value)) = line.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse::<usize>().ok();
        }
    }
    let mut body = Vec::new();
    match length {
        Some(n) => {
            body.resize(n, 0);
            reader.read_exact(&mut body)?;
        }
        None => {
            reader.read_to_end(&mut body)?;
        }
    }
    Ok((status, String::from_utf8_lossy(&body).into_owned()))
}
