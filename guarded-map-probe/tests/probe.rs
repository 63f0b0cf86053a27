//! The probe against a real child process (`probe-target`, of the tests crate), as root.
//!
//! Outside CI these tests skip, saying why, when this process is not root; under `CI=true` they
//! must run, so a non-root CI fails instead of passing silently.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use guarded_map_probe::{self as probe, Interval, Op, Options, Probe, ProbeError};
use guarded_map_tests::{root_or_skip, target_dir};

/// Whether to run; panics under CI when this process cannot.
fn privileged() -> bool {
    root_or_skip("the probe tests", "CAP_BPF, CAP_PERFMON, CAP_SYS_PTRACE")
}

fn probe_command() -> Command {
    Command::new(target_dir().join("guarded-map-probe"))
}

/// `probe-target`, driven through its stdin.
struct Script {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Script {
    fn spawn() -> Script {
        let mut child = Command::new(target_dir().join("probe-target"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawning probe-target (cargo build --workspace --bins)");
        let stdin = child.stdin.take().expect("piped");
        let stdout = BufReader::new(child.stdout.take().expect("piped"));
        let mut me = Script {
            child,
            stdin,
            stdout,
        };
        assert_eq!(me.line(), "ready");
        me
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn line(&mut self) -> String {
        let mut line = String::new();
        self.stdout.read_line(&mut line).expect("reading the child");
        line.trim().to_owned()
    }

    fn send(&mut self, command: &str) -> String {
        writeln!(self.stdin, "{command}").expect("writing to the child");
        self.stdin.flush().expect("flushing");
        self.line()
    }

    fn semaphore(&self) -> u16 {
        probe::check(self.pid())
            .expect("checking the child")
            .semaphore
            .expect("reading the child's semaphore")
    }
}

impl Drop for Script {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Intervals until `done` says the last one has what the test waits for (or 15 s pass).
fn intervals_until(probe: &mut Probe, mut done: impl FnMut(&[Interval]) -> bool) -> Vec<Interval> {
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut seen = Vec::new();
    while Instant::now() < deadline {
        seen.push(probe.next_interval().expect("an interval"));
        if done(&seen) {
            break;
        }
    }
    seen
}

fn totals(interval: &Interval, label: &str) -> Option<[u64; probe::OPS]> {
    interval
        .maps
        .iter()
        .find(|m| m.label == label)
        .map(|m| m.totals)
}

#[test]
fn summaries_and_kernel_counts_equal_what_the_child_did() {
    if !privileged() {
        return;
    }
    let mut child = Script::spawn();
    assert_eq!(child.semaphore(), 0, "no probe attached yet");
    let options = Options {
        interval: Duration::from_millis(200),
        sample_every: 1,
    };
    let mut probe = Probe::attach(child.pid(), options).expect("attaching");
    // One per uprobe (summary and operation hooks), raised by the kernel.
    assert_eq!(probe.semaphore().unwrap(), 2);
    assert_eq!(child.semaphore(), 2);

    const N: u64 = 1000;
    assert_eq!(child.send(&format!("maps {N}")), "ok");
    let calls: u64 = child
        .send("bpf 50")
        .strip_prefix("ok ")
        .and_then(|n| n.parse().ok())
        .expect("the child's count of its bpf() calls");

    let mut kernel_commands = 0;
    let mut samples = 0;
    let mut mirrored_by = None;
    let seen = intervals_until(&mut probe, |seen| {
        let last = seen.last().expect("one at least");
        for row in &last.kernel_maps {
            if row.map.name == "flows" {
                kernel_commands = row.total.commands();
                mirrored_by.clone_from(&row.mirrored_by);
            }
        }
        samples += last.maps.iter().map(|m| m.samples).sum::<u64>();
        let flows = totals(last, "probe_target::Agent.flows");
        flows.is_some_and(|t| t[Op::Insert as usize] == N) && kernel_commands == calls
    });
    let last = seen.last().expect("intervals");
    // Summaries are exact: every operation the child made, none more.
    let flows = totals(last, "probe_target::Agent.flows").expect("a summary of the flows map");
    assert_eq!(flows[Op::Insert as usize], N);
    assert_eq!(flows[Op::Get as usize], N);
    assert_eq!(flows[Op::Update as usize], 0);
    let queries =
        totals(last, "probe_target::Agent.queries").expect("a summary of the queries map");
    assert_eq!(
        queries[Op::Insert as usize] + queries[Op::Update as usize],
        N
    );
    assert_eq!(queries[Op::Insert as usize], 7);
    // Every bpf() call the child made after the probe attached: 50 updates, 50 lookups, the
    // batch walk, one delete.
    assert_eq!(kernel_commands, calls);
    assert!(calls > 101, "{calls}");
    assert_eq!(mirrored_by.as_deref(), Some("probe_target::Agent.flows"));
    // Sampling every operation: samples arrive (the ring buffer may drop some under load).
    assert!(samples > 0);
    let row = last
        .maps
        .iter()
        .find(|m| m.label == "probe_target::Agent.flows")
        .unwrap();
    assert_eq!(row.bpf_map.as_deref(), Some("flows"));
    assert_eq!(row.backend, "rcu");
    assert_eq!(row.form, None);
    assert_eq!(row.len, 256);

    // An adaptive map: its form, its switches and the last one's reason reach the probe.
    assert_eq!(child.send("switch"), "ok sharded");
    let sessions = "probe_target::Agent.sessions";
    let seen = intervals_until(&mut probe, |seen| {
        seen.last()
            .and_then(|i| i.maps.iter().find(|m| m.label == sessions))
            .is_some_and(|m| m.switches == 1)
    });
    let row = seen
        .last()
        .and_then(|i| i.maps.iter().find(|m| m.label == sessions))
        .expect("a summary of the adaptive map");
    assert_eq!((row.backend, row.form), ("adaptive", Some("sharded")));
    let last = row.last_switch.expect("its last switch");
    assert_eq!(
        (last.from.as_str(), last.to.as_str(), last.reason.as_str()),
        ("rcu", "sharded", "requested")
    );
    assert!(last.age_ms < 15_000, "{last:?}");

    // Pinned from outside: `pin` writes the request, the map applies it at its next sample
    // points, and `auto` lets it go.
    let pid = child.pid().to_string();
    let pin = |form: &str| {
        let out = run_probe(&["pin", "--pid", &pid, "--map", sessions, form]);
        assert!(out.status.success(), "{}", one_line_error(&out));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert!(pin("rcu").contains("held as rcu"));
    let mut answer = String::new();
    for _ in 0..100 {
        answer = child.send("form 10000");
        if answer == "ok rcu rcu" {
            break;
        }
    }
    assert_eq!(answer, "ok rcu rcu", "the pin was not applied");
    // The summaries say so.
    let pinned_as = |probe: &mut Probe, want: Option<&str>| {
        let seen = intervals_until(probe, |seen| {
            seen.last()
                .and_then(|i| i.maps.iter().find(|m| m.label == sessions))
                .is_some_and(|m| m.pinned == want)
        });
        let row = seen
            .last()
            .and_then(|i| i.maps.iter().find(|m| m.label == sessions))
            .cloned()
            .expect("a summary of the adaptive map");
        assert_eq!(row.pinned, want);
    };
    pinned_as(&mut probe, Some("rcu"));
    assert!(pin("auto").contains("cost model"));
    for _ in 0..100 {
        answer = child.send("form 10000");
        if answer == "ok rcu -" {
            break;
        }
    }
    assert_eq!(answer, "ok rcu -", "the pin was not released");
    pinned_as(&mut probe, None);

    probe.detach();
    assert_eq!(child.semaphore(), 0, "detaching lowers the semaphore");
    assert_eq!(child.send("quit"), "");
}

#[test]
fn killing_the_probe_lowers_the_semaphore() {
    if !privileged() {
        return;
    }
    let mut child = Script::spawn();
    let out = std::env::temp_dir().join(format!("guarded-map-probe-{}.jsonl", child.pid()));
    let mut cli = probe_command()
        .args(["record", "--pid", &child.pid().to_string()])
        .args(["--duration", "60", "--interval", "100ms", "--json"])
        .arg(&out)
        .spawn()
        .expect("spawning guarded-map-probe (cargo build --workspace --bins --examples)");
    // Attached once the first interval is written.
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::fs::metadata(&out).map_or(0, |m| m.len()) == 0 {
        assert!(Instant::now() < deadline, "the probe wrote nothing");
        assert_eq!(child.send("maps 10"), "ok");
        thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(child.semaphore(), 2);
    cli.kill().expect("SIGKILL");
    cli.wait().expect("reaping the probe");
    assert_eq!(
        child.semaphore(),
        0,
        "the kernel lowers it when the probe dies"
    );
    let first = std::fs::read_to_string(&out).unwrap();
    let first: serde_json::Value = serde_json::from_str(first.lines().next().unwrap()).unwrap();
    assert_eq!(first["pid"], child.pid());
    let _ = std::fs::remove_file(out);
}

fn run_probe(args: &[&str]) -> Output {
    probe_command()
        .args(args)
        .output()
        .expect("running guarded-map-probe")
}

/// The probe run as root with every capability dropped (util-linux's `setpriv`).
fn run_probe_without_capabilities(args: &[&str]) -> Output {
    Command::new("setpriv")
        .args([
            "--inh-caps=-all",
            "--ambient-caps=-all",
            "--bounding-set=-all",
            "--",
        ])
        .arg(target_dir().join("guarded-map-probe"))
        .args(args)
        .output()
        .expect("setpriv (util-linux)")
}

fn one_line_error(out: &Output) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    stderr
}

#[test]
fn a_target_that_exits_while_attached_ends_the_probe_with_an_error() {
    if !privileged() {
        return;
    }
    let mut child = Script::spawn();
    let pid = child.pid();
    let mut cli = probe_command()
        .args(["record", "--pid", &pid.to_string(), "--duration", "60"])
        .args(["--interval", "100ms", "--json", "-"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawning guarded-map-probe");
    let mut lines = BufReader::new(cli.stdout.take().unwrap()).lines();
    // Attached once it prints an interval.
    assert!(child.send("maps 1") == "ok" && lines.next().is_some());
    assert_eq!(child.send("quit"), "");
    let started = Instant::now();
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut cli.stderr.take().unwrap(), &mut stderr).unwrap();
    let status = cli.wait().unwrap();
    assert!(started.elapsed() < Duration::from_secs(10), "no hang");
    assert_eq!(status.code(), Some(1));
    assert_eq!(
        stderr.trim(),
        format!("guarded-map-probe: process {pid} exited")
    );
    // The library says the same.
    let child = Script::spawn();
    let pid = child.pid();
    let mut probe = Probe::attach(pid, Options::default()).unwrap();
    drop(child);
    assert!(matches!(
        probe.next_interval(),
        Err(ProbeError::TargetExited(p)) if p == pid
    ));
}

#[test]
fn bad_targets_and_missing_privileges_give_one_line_errors() {
    if !privileged() {
        return;
    }
    // No such process.
    let out = run_probe(&["top", "--pid", "999999999"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(one_line_error(&out).contains("no process with pid 999999999"));
    // A process without the hooks.
    let mut sleep = Command::new("sleep").arg("30").spawn().unwrap();
    let pid = sleep.id().to_string();
    for command in ["top", "check", "advise"] {
        let out = run_probe(&[command, "--pid", &pid]);
        assert_eq!(out.status.code(), Some(1));
        assert!(one_line_error(&out).contains("has no guarded-map hooks"));
    }
    let _ = sleep.kill();
    let _ = sleep.wait();
    // Usage errors.
    let out = run_probe(&["top"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("required arguments were not provided"));
    // Root without capabilities: refused before anything is loaded.
    let child = Script::spawn();
    let out = run_probe_without_capabilities(&["top", "--pid", &child.pid().to_string()]);
    assert_eq!(out.status.code(), Some(1));
    let err = one_line_error(&out);
    assert!(
        err.contains("insufficient privileges") && err.contains("CAP_BPF"),
        "{err}"
    );
    // `check` cannot even read a root process's executable without them, and says so.
    let out = run_probe_without_capabilities(&["check", "--pid", &child.pid().to_string()]);
    assert_eq!(out.status.code(), Some(1));
    let err = one_line_error(&out);
    assert!(
        err.contains("insufficient privileges") && err.contains("CAP_SYS_PTRACE"),
        "{err}"
    );
    // `pin` needs what attaching needs.
    let pid = child.pid().to_string();
    let sessions = "probe_target::Agent.sessions";
    let out = run_probe_without_capabilities(&["pin", "--pid", &pid, "--map", sessions, "rcu"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(one_line_error(&out).contains("insufficient privileges"));
    let out = run_probe(&["pin", "--pid", &pid, "--map", sessions, "fast"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("expected rcu, sharded or auto"));
    // So does `advise`.
    let out = run_probe_without_capabilities(&["advise", "--pid", &pid, "--duration", "1s"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(one_line_error(&out).contains("insufficient privileges"));
    let out = run_probe(&["advise", "--pid", &pid, "--duration", "0"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("bad duration"));
    // With them, `check` finds the hooks and the semaphore at rest.
    let out = run_probe(&["check", "--pid", &child.pid().to_string()]);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("hooks found") && text.contains("semaphore: 0"),
        "{text}"
    );
    assert_eq!(child.semaphore(), 0);
}

/// `advise` on the flows example (an eBPF agent: an ordered map mirrored from the kernel, a
/// sharded map of query counts): advice for both maps, with the numbers behind each line.
#[test]
fn advise_on_the_flows_example_prints_advice_with_numbers() {
    if !privileged() {
        return;
    }
    let mut flows = Command::new(target_dir().join("examples").join("flows"))
        .args(["--duration", "20", "--every", "5"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawning the flows example (cargo build --examples --features guarded-map-probe/programs)");
    let mut stdout = BufReader::new(flows.stdout.take().unwrap());
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    assert!(first.starts_with("mirroring SYSCALLS"), "{first}");
    // Keep reading its reports, so that it never blocks on a full pipe.
    let drain = thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
    let pid = flows.id().to_string();
    let out = run_probe(&["advise", "--pid", &pid, "--duration", "2s"]);
    let _ = flows.kill();
    let _ = flows.wait();
    let _ = drain.join();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let section = |label: &str| -> String {
        let start = text
            .find(&format!("{label}  "))
            .unwrap_or_else(|| panic!("no advice for {label}:\n{text}"));
        let rest = &text[start..];
        rest[..rest.find("\n\n").unwrap_or(rest.len())].to_owned()
    };
    let line = |section: &str, topic: &str| -> String {
        section
            .lines()
            .find(|l| l.trim_start().starts_with(&format!("{topic} ")))
            .unwrap_or_else(|| panic!("no {topic} line:\n{section}"))
            .to_owned()
    };
    let has_number = |l: &str| l.chars().any(|c| c.is_ascii_digit());
    // The query counter: two threads upsert about a thousand times a second each.
    let queries = section("flows::Agent.queries");
    assert!(
        queries.starts_with("flows::Agent.queries  sharded  (1 instance)"),
        "{queries}"
    );
    let mix = line(&queries, "mix");
    let writes: f64 = mix
        .split(" writes/s")
        .next()
        .and_then(|head| head.rsplit(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no writes/s in {mix}"));
    assert!(writes > 100.0, "{mix}");
    assert!(line(&queries, "cost").contains("ns"), "{queries}");
    for topic in ["backend", "capacity", "max_len", "shards"] {
        assert!(has_number(&line(&queries, topic)), "{topic}: {queries}");
    }
    assert!(line(&queries, "shards").contains("4"), "{queries}");
    // The mirrored ordered map: no hash backend to advise, the rest with numbers.
    let syscalls = section("flows::Agent.syscalls");
    assert!(
        syscalls.starts_with("flows::Agent.syscalls  ordered"),
        "{syscalls}"
    );
    assert!(line(&syscalls, "backend").contains("ordered"), "{syscalls}");
    assert!(has_number(&line(&syscalls, "max_len")), "{syscalls}");
}
