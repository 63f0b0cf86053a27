//! Scrape latency and the exporter's footprint, against a running process that serves `/metrics`
//! (`scripts/scrape-latency` runs it against the demo):
//!
//! - p50/p99/max of `--scrapes` scrapes on fresh connections and on one keep-alive connection,
//!   interleaved in rounds of 100 so that both see the same machine;
//! - the target's threads (and those named after the exporter) and resident memory idle, then
//!   while `--connections` idle connections are held open, with the scrape latency meanwhile.
//!
//! Prints a table and writes a JSON results file; asserts nothing.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::time::{Duration, Instant};
use std::{fs, thread};

use clap::Parser;
use serde::Serialize;

/// The exporter thread's name as `/proc` shows it (15 characters).
const EXPORTER_COMM: &str = "guarded-map-pro";

/// Scrape latency and the exporter's footprint, against a running process that serves /metrics.
#[derive(Parser, Debug)]
#[command(name = "scrape-latency")]
struct Args {
    /// The endpoint's address.
    #[arg(long, value_name = "IP:PORT")]
    addr: SocketAddr,
    /// The serving process, whose threads, memory and descriptors are read from /proc.
    #[arg(long)]
    pid: u32,
    /// Scrapes of each kind (fresh connections, keep-alive).
    #[arg(long, default_value_t = 1000)]
    scrapes: usize,
    /// Idle connections held open for the footprint.
    #[arg(long, default_value_t = 500)]
    connections: usize,
    /// The results file.
    #[arg(
        long,
        value_name = "FILE",
        default_value = "target/bench/scrape-latency.json"
    )]
    out: PathBuf,
}

#[derive(Debug, Clone, Copy, Serialize)]
struct Latency {
    p50_us: f64,
    p99_us: f64,
    max_us: f64,
    count: usize,
}

impl Latency {
    fn of(mut samples: Vec<Duration>) -> Latency {
        samples.sort_unstable();
        let at = |q: f64| {
            let i = ((samples.len() as f64 * q).ceil() as usize).clamp(1, samples.len()) - 1;
            samples[i].as_secs_f64() * 1e6
        };
        Latency {
            p50_us: at(0.50),
            p99_us: at(0.99),
            max_us: at(1.0),
            count: samples.len(),
        }
    }
}

#[derive(Debug, Clone, Copy, Serialize)]
struct Footprint {
    threads: usize,
    exporter_threads: usize,
    rss_kib: u64,
    fds: usize,
}

fn footprint(pid: u32) -> Footprint {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).expect("the target's status");
    let rss_kib = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .expect("VmRSS");
    let names: Vec<String> = fs::read_dir(format!("/proc/{pid}/task"))
        .expect("the target's threads")
        .filter_map(|t| fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .collect();
    Footprint {
        threads: names.len(),
        exporter_threads: names.iter().filter(|n| n.trim() == EXPORTER_COMM).count(),
        rss_kib,
        fds: fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count()),
    }
}

/// One scrape on a fresh connection, closed after the reply: its time and the reply's size.
fn scrape_fresh(addr: SocketAddr) -> (Duration, usize) {
    let start = Instant::now();
    let mut stream = TcpStream::connect(addr).expect("connect");
    write!(
        stream,
        "GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut reply = Vec::new();
    stream.read_to_end(&mut reply).unwrap();
    assert!(reply.starts_with(b"HTTP/1.1 200"), "a failed scrape");
    (start.elapsed(), reply.len())
}

/// A keep-alive connection that scrapes again and again.
struct KeepAlive {
    stream: TcpStream,
    reader: BufReader<TcpStream>,
    addr: SocketAddr,
}

impl KeepAlive {
    fn open(addr: SocketAddr) -> KeepAlive {
        let stream = TcpStream::connect(addr).expect("connect");
        stream.set_nodelay(true).unwrap();
        let reader = BufReader::new(stream.try_clone().unwrap());
        KeepAlive {
            stream,
            reader,
            addr,
        }
    }

    fn scrape(&mut self) -> Duration {
        let start = Instant::now();
        write!(
            self.stream,
            "GET /metrics HTTP/1.1\r\nHost: {}\r\n\r\n",
            self.addr
        )
        .unwrap();
        let mut line = String::new();
        self.reader.read_line(&mut line).unwrap();
        assert!(
            line.starts_with("HTTP/1.1 200"),
            "a failed scrape: {line:?}"
        );
        let mut length = 0;
        loop {
            line.clear();
            self.reader.read_line(&mut line).unwrap();
            if line == "\r\n" {
                break;
            }
            if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                length = v.trim().parse().unwrap();
            }
        }
        let mut body = vec![0; length];
        self.reader.read_exact(&mut body).unwrap();
        start.elapsed()
    }
}

/// Fresh and keep-alive scrapes, interleaved in rounds of 100.
fn latencies(addr: SocketAddr, scrapes: usize) -> (Latency, Latency) {
    let (mut fresh_times, mut kept_times) = (Vec::new(), Vec::new());
    let mut kept = KeepAlive::open(addr);
    while fresh_times.len() < scrapes {
        let round = (scrapes - fresh_times.len()).min(100);
        fresh_times.extend((0..round).map(|_| scrape_fresh(addr).0));
        kept_times.extend((0..round).map(|_| kept.scrape()));
    }
    (Latency::of(fresh_times), Latency::of(kept_times))
}

#[derive(Serialize)]
struct Results {
    scrapes: usize,
    response_bytes: usize,
    fresh: Latency,
    keep_alive: Latency,
    idle: Footprint,
    connections_opened: usize,
    with_connections: Footprint,
    fresh_with_connections: Latency,
    after: Footprint,
}

fn main() {
    let args = Args::parse();
    let (_, response_bytes) = scrape_fresh(args.addr);
    let (fresh, keep_alive) = latencies(args.addr, args.scrapes);
    let idle = footprint(args.pid);
    let held: Vec<TcpStream> = (0..args.connections)
        .map(|_| TcpStream::connect(args.addr).expect("connect"))
        .collect();
    thread::sleep(Duration::from_millis(300));
    let with_connections = footprint(args.pid);
    let fresh_with_connections = Latency::of((0..100).map(|_| scrape_fresh(args.addr).0).collect());
    drop(held);
    thread::sleep(Duration::from_millis(300));
    let after = footprint(args.pid);
    let results = Results {
        scrapes: args.scrapes,
        response_bytes,
        fresh,
        keep_alive,
        idle,
        connections_opened: args.connections,
        with_connections,
        fresh_with_connections,
        after,
    };
    println!("scrapes of {response_bytes} bytes; latency p50 / p99 / max, microseconds");
    let held_name = format!("fresh, {} idle held", args.connections);
    for (name, l) in [
        ("fresh connections", fresh),
        ("keep-alive", keep_alive),
        (held_name.as_str(), fresh_with_connections),
    ] {
        println!(
            "  {name:<22} {:>8.0} {:>8.0} {:>8.0}  ({} scrapes)",
            l.p50_us, l.p99_us, l.max_us, l.count
        );
    }
    println!("target footprint: threads (exporter's), resident KiB, open fds");
    for (name, f) in [
        ("idle", idle),
        ("connections held", with_connections),
        ("after", after),
    ] {
        println!(
            "  {name:<22} {:>3} ({}) {:>8} {:>5}",
            f.threads, f.exporter_threads, f.rss_kib, f.fds
        );
    }
    if let Some(dir) = args.out.parent() {
        fs::create_dir_all(dir).expect("the results directory");
    }
    fs::write(
        &args.out,
        serde_json::to_string_pretty(&results).expect("serializable"),
    )
    .expect("the results file");
    println!("wrote {}", args.out.display());
}
