//! `guarded-map-probe`: watch a running process's guarded maps and kernel BPF maps from outside.
//!
//! ```text
//! guarded-map-probe top    --pid PID [--interval 1s] [--sample-every 1024] [--duration D]
//! guarded-map-probe record --pid PID --duration D --json FILE [--interval 1s] [--sample-every 1024]
//! guarded-map-probe check  --pid PID
//! ```
//!
//! Exit status: 0 on success, 1 when the probe failed or `check` found something missing, 2 on a
//! usage error. Every error is one line on stderr.

use std::fs::File;
use std::io::{self, IsTerminal, Write};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use guarded_map_probe::{self as probe, Options, Probe, ProbeError, render};

const USAGE: &str = "usage:
  guarded-map-probe top    --pid PID [--interval 1s] [--sample-every 1024] [--duration D]
  guarded-map-probe record --pid PID --duration D --json FILE [--interval 1s] [--sample-every 1024]
  guarded-map-probe check  --pid PID

Durations: 500ms, 10s, 2m, or a number of seconds. FILE may be `-` for stdout.";

#[derive(Debug, PartialEq)]
enum Command {
    Top,
    Record,
    Check,
}

#[derive(Debug)]
struct Args {
    command: Command,
    pid: u32,
    options: Options,
    duration: Option<Duration>,
    json: Option<String>,
}

fn main() -> ExitCode {
    let args = match parse(std::env::args().skip(1)) {
        Ok(args) => args,
        Err(msg) if msg.is_empty() => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(msg) => {
            eprintln!("guarded-map-probe: {msg}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let result = match args.command {
        Command::Check => check(args.pid),
        Command::Top | Command::Record => watch(&args),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("guarded-map-probe: {err}");
            ExitCode::FAILURE
        }
    }
}

fn parse(mut argv: impl Iterator<Item = String>) -> Result<Args, String> {
    let command = match argv.next().as_deref() {
        Some("top") => Command::Top,
        Some("record") => Command::Record,
        Some("check") => Command::Check,
        Some("-h" | "--help" | "help") | None => return Err(String::new()),
        Some(other) => return Err(format!("unknown command `{other}`")),
    };
    let (mut pid, mut duration, mut json) = (None, None, None);
    let mut options = Options::default();
    while let Some(flag) = argv.next() {
        let mut value = || argv.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--pid" => {
                let v = value()?;
                pid = Some(v.parse::<u32>().map_err(|_| format!("bad pid `{v}`"))?);
            }
            "--interval" => options.interval = parse_duration(&value()?)?,
            "--duration" => duration = Some(parse_duration(&value()?)?),
            "--sample-every" => {
                let v = value()?;
                options.sample_every = v
                    .parse()
                    .map_err(|_| format!("bad --sample-every `{v}` (a count, 0 for none)"))?;
            }
            "--json" if command == Command::Record => json = Some(value()?),
            other => return Err(format!("unknown option `{other}`")),
        }
    }
    let pid = pid.ok_or("--pid is required")?;
    if options.interval < Duration::from_millis(10) {
        return Err("--interval must be at least 10ms".into());
    }
    if command == Command::Record && (duration.is_none() || json.is_none()) {
        return Err("record needs --duration and --json".into());
    }
    Ok(Args {
        command,
        pid,
        options,
        duration,
        json,
    })
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    let bad = || format!("bad duration `{text}` (e.g. 500ms, 10s, 2m)");
    let (number, unit) = match text.find(|c: char| c.is_ascii_alphabetic()) {
        Some(i) => text.split_at(i),
        None => (text, "s"),
    };
    let number: f64 = number.parse().map_err(|_| bad())?;
    let seconds = match unit {
        "ms" => number / 1e3,
        "s" => number,
        "m" => number * 60.0,
        _ => return Err(bad()),
    };
    if !seconds.is_finite() || seconds <= 0.0 {
        return Err(bad());
    }
    Ok(Duration::from_secs_f64(seconds))
}

fn check(pid: u32) -> Result<ExitCode, ProbeError> {
    let found = probe::check(pid)?;
    println!("process {pid} ({}): guarded-map hooks found", found.exe);
    match found.semaphore {
        Some(0) => println!("semaphore: 0 (no probe attached)"),
        Some(n) => println!("semaphore: {n} (a probe is attached)"),
        None => println!("semaphore: unreadable (needs CAP_SYS_PTRACE or the same user)"),
    }
    match found.missing() {
        None => {
            println!("privileges: sufficient to attach");
            Ok(ExitCode::SUCCESS)
        }
        Some(missing) => {
            println!("privileges: {missing}");
            Ok(ExitCode::FAILURE)
        }
    }
}

fn watch(args: &Args) -> Result<ExitCode, ProbeError> {
    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = Arc::clone(&stop);
        // Without a handler, Ctrl-C still detaches (the kernel drops the uprobes with the process).
        let _ = ctrlc::set_handler(move || stop.store(true, Ordering::Relaxed));
    }
    let mut out: Box<dyn Write> = match args.json.as_deref() {
        Some("-") => Box::new(io::stdout()),
        Some(path) => Box::new(File::create(path).map_err(|source| ProbeError::Io {
            what: format!("creating {path}"),
            source,
        })?),
        None => Box::new(io::stdout()),
    };
    let mut probe = Probe::attach(args.pid, args.options)?;
    let started = Instant::now();
    let clear = args.command == Command::Top && io::stdout().is_terminal();
    while !stop.load(Ordering::Relaxed) {
        let interval = probe.next_interval()?;
        let written = if args.command == Command::Record {
            let unix_ms = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_millis());
            writeln!(out, "{}", render::json(&interval, probe.pid(), unix_ms))
        } else {
            let home = if clear { "\x1b[2J\x1b[H" } else { "" };
            writeln!(
                out,
                "{home}{}",
                render::table(&interval, probe.pid(), probe.exe())
            )
        };
        written
            .and_then(|()| out.flush())
            .map_err(|source| ProbeError::Io {
                what: "writing the output".into(),
                source,
            })?;
        if args.duration.is_some_and(|d| started.elapsed() >= d) {
            break;
        }
    }
    probe.detach();
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(line: &str) -> Result<Args, String> {
        parse(line.split_whitespace().map(str::to_owned))
    }

    #[test]
    fn commands_and_options_parse() {
        let a = args("record --pid 42 --duration 2s --json out.jsonl --sample-every 8").unwrap();
        assert_eq!((a.command, a.pid), (Command::Record, 42));
        assert_eq!(a.duration, Some(Duration::from_secs(2)));
        assert_eq!(a.options.sample_every, 8);
        assert_eq!(
            args("top --pid 1 --interval 250ms")
                .unwrap()
                .options
                .interval,
            Duration::from_millis(250)
        );
        assert_eq!(parse_duration("1.5").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
    }

    #[test]
    fn bad_input_is_refused_with_a_reason() {
        for (line, says) in [
            ("top", "--pid is required"),
            ("top --pid abc", "bad pid"),
            ("top --pid", "needs a value"),
            ("frob --pid 1", "unknown command"),
            ("top --pid 1 --json x", "unknown option"),
            ("record --pid 1 --duration 1s", "record needs"),
            ("top --pid 1 --interval 0", "bad duration"),
            ("top --pid 1 --interval 1ms", "at least 10ms"),
            ("top --pid 1 --duration 3h", "bad duration"),
        ] {
            let err = args(line).unwrap_err();
            assert!(err.contains(says), "{line}: {err}");
        }
    }
}
