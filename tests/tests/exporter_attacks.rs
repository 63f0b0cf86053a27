//! The Prometheus endpoint under attack from 127.0.0.1: a child process serves it
//! (`exporter-target`, file descriptors limited to 64 with `setrlimit`), and for each attack held
//! open, a normal scrape must succeed within 1 s, the process must live, its threads must not
//! grow, its memory must grow by less than [`RSS_BOUND_KIB`], and its threads and file descriptors
//! must come back to their baseline once the attack lets go. Last, `shutdown()` must return within
//! 1 s while attacks are held.

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use guarded_map_tests::scrape;

/// The most the target's resident memory may grow while an attack is held.
const RSS_BOUND_KIB: u64 = 32 * 1024;
/// The target's file descriptor limit: fewer than its connection cap (64) plus what it holds
/// anyway, so the 600 idle connections run it out of descriptors too.
const TARGET_NOFILE: u64 = 64;
/// The target's request timeout (slow senders are dropped after it).
const REQUEST_TIMEOUT: Duration = Duration::from_millis(1000);
const SCRAPE_LIMIT: Duration = Duration::from_secs(1);

struct Target {
    child: Child,
    /// Where the target's standard error (the exporter's log) goes.
    log: PathBuf,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    addr: SocketAddr,
}

#[derive(Debug, Clone, Copy)]
struct Usage {
    threads: u64,
    fds: u64,
    rss_kib: u64,
}

impl Target {
    fn start(name: &str) -> Target {
        let log = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("{name}.log"));
        let mut command = Command::new(env!("CARGO_BIN_EXE_exporter-target"));
        command
            .args([
                "--request-timeout-ms",
                &REQUEST_TIMEOUT.as_millis().to_string(),
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).expect("the target's log file"));
        // SAFETY: runs in the forked child before exec; setrlimit is async-signal-safe and the
        // closure touches nothing else.
        unsafe {
            command.pre_exec(|| {
                let limit = libc::rlimit {
                    rlim_cur: TARGET_NOFILE,
                    rlim_max: TARGET_NOFILE,
                };
                if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let mut child = command.spawn().expect("spawning exporter-target");
        let stdin = child.stdin.take().unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        stdout
            .read_line(&mut line)
            .expect("the target's first line");
        let addr = line
            .trim()
            .strip_prefix("listening ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .parse()
            .expect("an address");
        Target {
            child,
            log,
            stdin,
            stdout,
            addr,
        }
    }

    fn usage(&self) -> Usage {
        let pid = self.child.id();
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
        let field = |name: &str| -> u64 {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("{name} in /proc/{pid}/status"))
        };
        let fds = std::fs::read_dir(format!("/proc/{pid}/fd"))
            .expect("fd directory")
            .count() as u64;
        Usage {
            threads: field("Threads:"),
            fds,
            rss_kib: field("VmRSS:"),
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn assert_alive(&mut self, attack: &str) {
        if let Some(status) = self.child.try_wait().unwrap() {
            panic!("{attack}: the target died: {status}");
        }
    }

    /// A normal scrape on a fresh connection: complete, correct, and within [`SCRAPE_LIMIT`].
    fn scrape(&self, attack: &str) -> Duration {
        let start = Instant::now();
        let (status, body) = scrape::get(self.addr, "/metrics")
            .unwrap_or_else(|e| panic!("{attack}: scrape failed after {:?}: {e}", start.elapsed()));
        let took = start.elapsed();
        assert_eq!(status, 200, "{attack}: {body}");
        assert!(
            body.contains("guarded_map_entries{map=\"target.routes\"} 100"),
            "{attack}: {body}"
        );
        assert!(
            took < SCRAPE_LIMIT,
            "{attack}: a scrape took {took:?} while the attack was held"
        );
        took
    }

    /// Waits (at most 5 s) for threads and descriptors to come back to `base`.
    fn settles_to(&self, base: Usage, attack: &str) {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let now = self.usage();
            if now.threads == base.threads && now.fds <= base.fds {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{attack}: threads/fds did not return to baseline: {now:?} vs {base:?}"
            );
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Asks the target to shut its exporter down; how long `shutdown()` took, as it measured.
    fn shutdown(mut self) -> Duration {
        writeln!(self.stdin, "shutdown").unwrap();
        let start = Instant::now();
        let mut line = String::new();
        self.stdout.read_line(&mut line).unwrap();
        let status = self.child.wait().unwrap();
        assert!(status.success(), "{status}");
        let answered = start.elapsed();
        assert!(
            answered < Duration::from_secs(2),
            "shutdown answered after {answered:?}"
        );
        let reported: u64 = line
            .trim()
            .strip_prefix("stopped in ")
            .and_then(|l| l.strip_suffix(" us"))
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("unexpected line {line:?}"));
        Duration::from_micros(reported)
    }
}

/// What an attack holds open until dropped: sockets, and threads that stop when told.
#[derive(Default)]
struct Held {
    sockets: Vec<TcpStream>,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl Held {
    fn of(stream: TcpStream) -> Held {
        let mut held = Held::default();
        held.sockets.push(stream);
        held
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        for t in self.threads.drain(..) {
            t.join().unwrap();
        }
    }
}

fn connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    stream
        .set_write_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    stream
}

/// Sends `request` on a new connection and holds it without reading.
fn send_and_hold(addr: SocketAddr, request: &[u8]) -> Held {
    let mut stream = connect(addr);
    stream.write_all(request).unwrap();
    Held::of(stream)
}

/// Sends `request` on a new connection and returns the status line of the reply.
fn status_of(addr: SocketAddr, request: &[u8]) -> String {
    let mut stream = connect(addr);
    stream.write_all(request).unwrap();
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    line.trim().to_owned()
}

/// Whether the server closes `stream` (read returns end of file or a reset) within `within`.
fn closed_by_server(stream: &mut TcpStream, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    stream
        .set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    let mut buf = [0u8; 64 * 1024];
    while Instant::now() < deadline {
        match stream.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => return true,
        }
    }
    false
}

fn huge_content_length(addr: SocketAddr) -> Held {
    let mut held = Held::default();
    for len in [
        "4611686018427387904",
        "18446744073709551615",
        "18446744073709551616",
    ] {
        let request = format!("GET /metrics HTTP/1.1\r\nHost: a\r\nContent-Length: {len}\r\n\r\n");
        held.sockets
            .append(&mut send_and_hold(addr, request.as_bytes()).sockets);
    }
    held
}

fn body_never_sent(addr: SocketAddr) -> Held {
    send_and_hold(
        addr,
        b"POST /metrics HTTP/1.1\r\nHost: a\r\nContent-Length: 1025\r\n\r\n",
    )
}

fn expect_continue(addr: SocketAddr) -> Held {
    send_and_hold(
        addr,
        b"POST /metrics HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\nExpect: 100-continue\r\n\r\n",
    )
}

/// An 8 MiB header line with no end, written from a thread until the server stops taking it.
fn unterminated_header(addr: SocketAddr) -> Held {
    let mut stream = connect(addr);
    let mut held = Held::default();
    let mut writer = stream.try_clone().unwrap();
    let stop = Arc::clone(&held.stop);
    held.threads.push(thread::spawn(move || {
        let _ = writer.write_all(b"GET /metrics HTTP/1.1\r\nX-Junk: ");
        let chunk = vec![b'a'; 64 * 1024];
        for _ in 0..128 {
            if stop.load(Ordering::SeqCst) || writer.write_all(&chunk).is_err() {
                return;
            }
        }
    }));
    // The server answers 431 once its 16 KiB head buffer is full, then closes.
    assert!(
        closed_by_server(&mut stream, Duration::from_secs(2)),
        "an unterminated header line is not cut off"
    );
    held.sockets.push(stream);
    held
}

/// Ten connections dripping a header one byte every 20 ms: each must be dropped by the request
/// timeout.
fn slow_drip(addr: SocketAddr) -> Held {
    let mut held = Held::default();
    for _ in 0..10 {
        let mut stream = connect(addr);
        let stop = Arc::clone(&held.stop);
        held.threads.push(thread::spawn(move || {
            let start = Instant::now();
            let head = b"GET /metrics HTTP/1.1\r\nX-Slow: ";
            stream.write_all(head).unwrap();
            while !stop.load(Ordering::SeqCst) && start.elapsed() < Duration::from_secs(5) {
                if stream.write_all(b"a").is_err() {
                    break;
                }
                thread::sleep(Duration::from_millis(20));
                let mut probe = [0u8; 1024];
                stream.set_nonblocking(true).unwrap();
                let ended = matches!(stream.read(&mut probe), Ok(0));
                stream.set_nonblocking(false).unwrap();
                if ended {
                    break;
                }
            }
            let took = start.elapsed();
            if !stop.load(Ordering::SeqCst) {
                assert!(
                    took < REQUEST_TIMEOUT + Duration::from_millis(700),
                    "a slow-drip connection lived {took:?}"
                );
            }
        }));
    }
    held
}

fn idle_connections(addr: SocketAddr) -> Held {
    let mut held = Held::default();
    for _ in 0..650 {
        held.sockets.push(connect(addr));
    }
    held
}

/// 2000 requests in one write, replies never read.
fn pipelined_unread(addr: SocketAddr) -> Held {
    let request = format!("GET /metrics HTTP/1.1\r\nHost: {addr}\r\n\r\n");
    let all = request.repeat(2000);
    let stream = connect(addr);
    let mut held = Held::default();
    let mut writer = stream.try_clone().unwrap();
    held.threads.push(thread::spawn(move || {
        let _ = writer.write_all(all.as_bytes());
    }));
    // Let the server fill its send buffer.
    thread::sleep(Duration::from_millis(200));
    let _ = stream.set_read_timeout(Some(Duration::from_millis(1)));
    held.sockets.push(stream);
    held
}

const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

fn h2_frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = payload.len() as u32;
    let mut frame = len.to_be_bytes()[1..].to_vec();
    frame.extend([kind, flags]);
    frame.extend(stream.to_be_bytes());
    frame.extend(payload);
    frame
}

/// An HTTP/2 client with prior knowledge: preface, SETTINGS, and `GET /metrics` on stream 1
/// (HPACK without Huffman coding). The server must answer it with 200 and the metrics.
fn http2_get(addr: SocketAddr) -> Held {
    let mut stream = connect(addr);
    let mut block = vec![0x82, 0x86]; // :method GET, :scheme http (static table)
    block.extend([0x44, 8]); // :path, literal value
    block.extend(b"/metrics");
    block.extend([0x41, 1, b'a']); // :authority a
    let mut out = H2_PREFACE.to_vec();
    out.extend(h2_frame(0x4, 0, 0, &[])); // SETTINGS
    out.extend(h2_frame(0x1, 0x4 | 0x1, 1, &block)); // HEADERS, END_HEADERS | END_STREAM
    stream.write_all(&out).unwrap();
    let (mut status_200, mut data) = (false, Vec::new());
    let deadline = Instant::now() + SCRAPE_LIMIT;
    while Instant::now() < deadline && !String::from_utf8_lossy(&data).contains("target.routes") {
        let mut header = [0u8; 9];
        stream.read_exact(&mut header).expect("an HTTP/2 frame");
        let len = u32::from_be_bytes([0, header[0], header[1], header[2]]) as usize;
        let mut payload = vec![0u8; len];
        stream.read_exact(&mut payload).unwrap();
        let on_stream_1 = u32::from_be_bytes(header[5..9].try_into().unwrap()) == 1;
        match header[3] {
            0x1 if on_stream_1 => status_200 = payload.first() == Some(&0x88), // :status 200
            0x0 if on_stream_1 => data.extend(payload),
            _ => {}
        }
    }
    assert!(status_200, "no :status 200 on the HTTP/2 stream");
    assert!(String::from_utf8_lossy(&data).contains("guarded_map_entries"));
    Held::of(stream)
}

/// A TLS 1.2 ClientHello (the server speaks plain HTTP): it must be answered 400 and closed.
fn tls_client_hello(addr: SocketAddr) -> Held {
    let mut hello = vec![0x03, 0x03];
    hello.extend([0x5a; 32]); // random
    hello.push(0); // no session id
    hello.extend([0x00, 0x02, 0x13, 0x01]); // one cipher suite
    hello.extend([0x01, 0x00]); // null compression
    hello.extend([0x00, 0x00]); // no extensions
    let mut handshake = vec![0x01, 0, 0, hello.len() as u8];
    handshake.extend(hello);
    let mut record = vec![0x16, 0x03, 0x01, 0, handshake.len() as u8];
    record.extend(handshake);
    let mut stream = connect(addr);
    stream.write_all(&record).unwrap();
    let mut reply = [0u8; 12];
    stream
        .read_exact(&mut reply)
        .expect("a reply to a ClientHello");
    assert_eq!(&reply, b"HTTP/1.1 400", "a ClientHello is not refused");
    assert!(closed_by_server(&mut stream, SCRAPE_LIMIT));
    Held::of(stream)
}

/// Opens an attack on the address and holds it until dropped.
type Attack = fn(SocketAddr) -> Held;

/// Runs one attack against the target and checks everything the module promises while it is
/// held and after it lets go.
fn survive(target: &mut Target, name: &str, attack: Attack) {
    let base = target.usage();
    let held = attack(target.addr);
    thread::sleep(Duration::from_millis(100));
    let took = target.scrape(name);
    target.assert_alive(name);
    let during = target.usage();
    assert_eq!(
        during.threads, base.threads,
        "{name}: the server started threads"
    );
    let grown = during.rss_kib.saturating_sub(base.rss_kib);
    assert!(
        grown < RSS_BOUND_KIB,
        "{name}: resident memory grew by {grown} KiB"
    );
    eprintln!(
        "{name}: scrape in {took:?}; threads {} fds {} -> {}; rss +{grown} KiB",
        during.threads, base.fds, during.fds
    );
    drop(held);
    target.settles_to(base, name);
    target.assert_alive(name);
}

#[test]
fn no_client_can_crash_or_stall_the_exporter() {
    let mut target = Target::start("attacks");
    // Baseline: the process, its exporter thread, and its descriptors, once it has served.
    target.scrape("baseline");
    let attacks: [(&str, Attack); 9] = [
        ("huge and overflowing Content-Length", huge_content_length),
        ("a declared body never sent", body_never_sent),
        ("Expect: 100-continue", expect_continue),
        ("a multi-MiB unterminated header line", unterminated_header),
        ("slow-drip headers", slow_drip),
        ("650 idle connections", idle_connections),
        ("2000 pipelined requests left unread", pipelined_unread),
        ("an HTTP/2 preface and request", http2_get),
        ("a TLS ClientHello", tls_client_hello),
    ];
    for (name, attack) in attacks {
        survive(&mut target, name, attack);
    }

    // Running out of descriptors was logged, once (the next line may come 10 s later).
    let log = target.log();
    assert_eq!(log.matches("cannot accept connections").count(), 1, "{log}");

    // The same requests get the right answers.
    let overflowing =
        b"GET /metrics HTTP/1.1\r\nHost: a\r\nContent-Length: 18446744073709551616\r\n\r\n";
    assert!(status_of(target.addr, overflowing).starts_with("HTTP/1.1 400"));
    let huge = b"GET /metrics HTTP/1.1\r\nHost: a\r\nContent-Length: 4611686018427387904\r\n\r\n";
    assert_eq!(status_of(target.addr, huge), "HTTP/1.1 200 OK");
    let post = b"POST /metrics HTTP/1.1\r\nHost: a\r\nContent-Length: 1025\r\n\r\n";
    assert_eq!(
        status_of(target.addr, post),
        "HTTP/1.1 405 Method Not Allowed"
    );

    // Shutdown returns within 1 s while a mix of attacks is held.
    let held = [
        idle_connections(target.addr),
        slow_drip(target.addr),
        pipelined_unread(target.addr),
        body_never_sent(target.addr),
        expect_continue(target.addr),
    ];
    let took = target.shutdown();
    eprintln!("shutdown under attack: {took:?}");
    assert!(took < Duration::from_secs(1), "shutdown took {took:?}");
    drop(held);
}

#[test]
fn routes_methods_and_keep_alive() {
    let target = Target::start("routes");
    let (status, body) = scrape::request(target.addr, "HEAD", "/metrics").unwrap();
    assert_eq!((status, body.as_str()), (200, ""));
    assert_eq!(scrape::get(target.addr, "/").unwrap().0, 200);
    assert_eq!(scrape::get(target.addr, "/nothing").unwrap().0, 404);
    assert_eq!(
        scrape::request(target.addr, "DELETE", "/metrics")
            .unwrap()
            .0,
        405
    );
    // Keep-alive: three scrapes on one connection.
    let mut stream = connect(target.addr);
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    for _ in 0..3 {
        write!(stream, "GET /metrics HTTP/1.1\r\nHost: a\r\n\r\n").unwrap();
        let mut status = String::new();
        reader.read_line(&mut status).unwrap();
        assert_eq!(status.trim(), "HTTP/1.1 200 OK");
        let mut length = None;
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            if line == "\r\n" {
                break;
            }
            if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                length = v.trim().parse::<usize>().ok();
            }
        }
        let mut body = vec![0u8; length.expect("a content length")];
        reader.read_exact(&mut body).unwrap();
        assert!(String::from_utf8_lossy(&body).contains("guarded_map_info"));
    }
    drop(stream);
    assert!(target.shutdown() < Duration::from_secs(1));
}
