//! Scraping a Prometheus endpoint in tests: an HTTP GET over a plain socket, a parser for the text
//! exposition format, and `promtool check metrics`.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::time::Duration;

/// `GET path` on `addr`; returns the status code and the body.
pub fn get(addr: SocketAddr, path: &str) -> std::io::Result<(u16, String)> {
    request(addr, "GET", path)
}

/// `method path` on `addr`, on a fresh connection closed after the reply; returns the status
/// code and the body.
pub fn request(addr: SocketAddr, method: &str, path: &str) -> std::io::Result<(u16, String)> {
    send(addr, method, path, "")
}

/// `method path` on `addr` with a JSON `body`, on a fresh connection closed after the reply;
/// returns the status code and the body.
pub fn send(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: &str,
) -> std::io::Result<(u16, String)> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    let mut raw = String::new();
    stream.read_to_string(&mut raw)?;
    let (head, body) = raw
        .split_once("\r\n\r\n")
        .ok_or_else(|| std::io::Error::other("no end of headers"))?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("bad status line in {head:?}")))?;
    let chunked = head
        .lines()
        .any(|l| l.eq_ignore_ascii_case("transfer-encoding: chunked"));
    let body = if chunked {
        dechunk(body).ok_or_else(|| std::io::Error::other("bad chunked body"))?
    } else {
        body.to_owned()
    };
    Ok((status, body))
}

/// The body of a chunked transfer encoding.
fn dechunk(mut rest: &str) -> Option<String> {
    let mut body = String::new();
    loop {
        let (size, after) = rest.split_once("\r\n")?;
        let size = usize::from_str_radix(size.split(';').next()?.trim(), 16).ok()?;
        if size == 0 {
            return Some(body);
        }
        body.push_str(after.get(..size)?);
        rest = after.get(size..)?.strip_prefix("\r\n")?;
    }
}

/// One sample line: `name{label="value",...} number`.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// The metric name (with `_bucket`, `_sum`, `_count` for histogram series).
    pub name: String,
    /// The labels, in the order written.
    pub labels: Vec<(String, String)>,
    /// The value.
    pub value: f64,
}

/// The samples of a text exposition (comments skipped).
pub fn parse(text: &str) -> Vec<Sample> {
    text.lines()
        .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
        .filter_map(parse_line)
        .collect()
}

fn parse_line(line: &str) -> Option<Sample> {
    let (series, value) = line.rsplit_once(' ')?;
    let value = value.parse().ok()?;
    let (name, labels) = match series.split_once('{') {
        None => (series, Vec::new()),
        Some((name, rest)) => (name, parse_labels(rest.strip_suffix('}')?)?),
    };
    Some(Sample {
        name: name.to_owned(),
        labels,
        value,
    })
}

/// Label values in our output never contain `"`, `,` or `=` escaped; keep the parser to that.
fn parse_labels(text: &str) -> Option<Vec<(String, String)>> {
    let mut labels = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        let (key, after) = rest.split_once("=\"")?;
        let (value, after) = after.split_once('"')?;
        labels.push((key.trim_start_matches(',').to_owned(), value.to_owned()));
        rest = after.trim_start_matches(',');
    }
    Some(labels)
}

/// The value of the one sample named `name` whose labels include `labels`.
///
/// Panics, with the candidates, when there is none or more than one.
pub fn value(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> f64 {
    let found: Vec<&Sample> = samples
        .iter()
        .filter(|s| s.name == name)
        .filter(|s| {
            labels
                .iter()
                .all(|(k, v)| s.labels.iter().any(|(sk, sv)| sk == k && sv == v))
        })
        .collect();
    match found.as_slice() {
        [one] => one.value,
        _ => panic!(
            "expected one sample {name}{labels:?}, found {}: {found:?}",
            found.len()
        ),
    }
}

/// Runs `promtool check metrics` on `text`: `None` when promtool is not installed, otherwise its
/// verdict (`Err` with what it printed if it found any problem or warning).
pub fn promtool_check(text: &str) -> Option<Result<(), String>> {
    let mut child = match Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(child) => child,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(e) => return Some(Err(format!("cannot run promtool: {e}"))),
    };
    let written = child
        .stdin
        .take()
        .expect("piped")
        .write_all(text.as_bytes());
    let out = child.wait_with_output().expect("promtool runs");
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Some(match written {
        Err(e) => Err(format!("cannot write to promtool: {e}")),
        Ok(()) if out.status.success() && printed.trim().is_empty() => Ok(()),
        Ok(()) => Err(printed),
    })
}

/// Asserts that `promtool check metrics` accepts `text` without warnings; without promtool the
/// check is skipped with a note, except in CI (`CI` set), where promtool is required.
pub fn assert_promtool_accepts(text: &str) {
    match promtool_check(text) {
        Some(verdict) => verdict.expect("promtool check metrics passes without warnings"),
        None if std::env::var_os("CI").is_some() => panic!("promtool is required in CI"),
        None => eprintln!("skipped promtool check: promtool not installed"),
    }
}
