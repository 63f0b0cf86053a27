//! `guarded-map-probe`: watch a running process's guarded maps and kernel BPF maps from outside.
//!
//! ```text
//! guarded-map-probe top    --pid PID [--interval 1s] [--sample-every 1024] [--duration D]
//! guarded-map-probe record --pid PID --duration D --json FILE [--interval 1s] [--sample-every 1024]
//! guarded-map-probe check  --pid PID
//! guarded-map-probe pin    --pid PID --map LABEL rcu|sharded|auto
//! guarded-map-probe plot   --json FILE --out PICTURE.svg
//! ```
//!
//! Exit status: 0 on success, 1 when the probe failed or `check` found something missing, 2 on a
//! usage error (with clap's message and usage). Every error of the probe itself is one line on stderr.

use std::fs::File;
use std::io::{self, IsTerminal, Write};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use clap::{Args, Parser, Subcommand};
use guarded_map_probe::{self as probe, ActiveBackend, Options, Probe, ProbeError, render};

/// Watch a running process's guarded maps and kernel BPF maps from outside.
#[derive(Parser, Debug)]
#[command(
    name = "guarded-map-probe",
    version,
    after_help = "Durations: 500ms, 10s, 2m, or a number of seconds. FILE may be `-` for stdout.\n\
                  Exit status: 0 on success, 1 when the probe failed or `check` found something \
                  missing, 2 on a usage error."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// A live table of the target's maps, every interval (Ctrl-C detaches).
    Top {
        #[command(flatten)]
        watch: Watch,
        /// Stop after this long.
        #[arg(long, value_parser = parse_duration)]
        duration: Option<Duration>,
    },
    /// One JSON line per interval, to a file.
    Record {
        #[command(flatten)]
        watch: Watch,
        /// How long to record.
        #[arg(long, value_parser = parse_duration)]
        duration: Duration,
        /// Where to write the lines (`-`: standard output).
        #[arg(long, value_name = "FILE")]
        json: String,
    },
    /// A recording (of `record`, or the capacity stress run's history) as an SVG picture: per map,
    /// entries, capacity, max_len and the growth forecast over time.
    Plot {
        /// The recording (`-`: standard input).
        #[arg(long, value_name = "FILE")]
        json: String,
        /// Where to write the SVG picture.
        #[arg(long, value_name = "PICTURE")]
        out: String,
    },
    /// Whether the target has the hooks, and this process the privileges to attach.
    Check {
        /// The target process.
        #[arg(long)]
        pid: u32,
    },
    /// Watches the target for a while, then prints for every map the observed mix, the estimated
    /// cost per operation under each backend, and advice on its backend, pre-sizing, max_len and
    /// shard count, with the numbers behind each.
    Advise {
        /// The target process.
        #[arg(long)]
        pid: u32,
        /// How long to watch.
        #[arg(long, default_value = "3s", value_parser = parse_duration)]
        duration: Duration,
    },
    /// Holds an adaptive map of the target in one form (`rcu`, `sharded`), or lets its cost model
    /// decide again (`auto`). Needs the privileges attaching needs.
    Pin {
        /// The target process.
        #[arg(long)]
        pid: u32,
        /// The map's label (as `top` shows it).
        #[arg(long)]
        map: String,
        /// `rcu`, `sharded` or `auto`.
        #[arg(value_parser = parse_form)]
        form: Form,
    },
}

/// What `pin` asks for.
#[derive(Clone, Copy, Debug)]
struct Form(Option<ActiveBackend>);

fn parse_form(text: &str) -> Result<Form, String> {
    match text {
        "rcu" => Ok(Form(Some(ActiveBackend::Rcu))),
        "sharded" => Ok(Form(Some(ActiveBackend::Sharded))),
        "auto" => Ok(Form(None)),
        _ => Err(format!("`{text}`: expected rcu, sharded or auto")),
    }
}

/// What `top` and `record` watch, and how.
#[derive(Args, Debug)]
struct Watch {
    /// The target process.
    #[arg(long)]
    pid: u32,
    /// Length of an interval (at least 10ms).
    #[arg(long, default_value = "1s", value_parser = parse_interval)]
    interval: Duration,
    /// Sample one operation in this many, per thread of the target (0: none).
    #[arg(long, default_value_t = Options::default().sample_every)]
    sample_every: u32,
}

impl Watch {
    fn options(&self) -> Options {
        Options {
            interval: self.interval,
            sample_every: self.sample_every,
        }
    }
}

/// Where `watch` writes, and in which form.
enum Output {
    Table { duration: Option<Duration> },
    Json { duration: Duration, path: String },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Check { pid } => check(pid),
        Command::Pin { pid, map, form } => probe::pin(pid, &map, form.0).map(|number| {
            match form.0 {
                Some(to) => println!(
                    "process {pid}: {map} is held as {} from its next sample point (request {number})",
                    to.as_str()
                ),
                None => println!(
                    "process {pid}: {map} is left to its cost model again (request {number})"
                ),
            }
            ExitCode::SUCCESS
        }),
        Command::Advise { pid, duration } => advise(pid, duration),
        Command::Plot { json, out } => {
            return match plot(&json, &out) {
                Ok(()) => ExitCode::SUCCESS,
                Err(err) => {
                    eprintln!("guarded-map-probe: {err}");
                    ExitCode::FAILURE
                }
            };
        }
        Command::Top { watch, duration } => run(&watch, Output::Table { duration }),
        Command::Record {
            watch,
            duration,
            json,
        } => run(
            &watch,
            Output::Json {
                duration,
                path: json,
            },
        ),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("guarded-map-probe: {err}");
            ExitCode::FAILURE
        }
    }
}

/// Reads a recording and writes its picture.
fn plot(json: &str, out: &str) -> Result<(), String> {
    let text = if json == "-" {
        io::read_to_string(io::stdin()).map_err(|e| format!("reading standard input: {e}"))?
    } else {
        std::fs::read_to_string(json).map_err(|e| format!("reading {json}: {e}"))?
    };
    let maps = probe::plot::read(&text).map_err(|e| format!("{json}: {e}"))?;
    let svg = probe::plot::svg(&maps).map_err(|e| e.to_string())?;
    std::fs::write(out, svg).map_err(|e| format!("writing {out}: {e}"))?;
    eprintln!("wrote {out}: {} maps", maps.len());
    Ok(())
}

fn parse_interval(text: &str) -> Result<Duration, String> {
    let interval = parse_duration(text)?;
    if interval < Duration::from_millis(10) {
        return Err("the interval must be at least 10ms".into());
    }
    Ok(interval)
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

/// Watches `pid` for `duration` and prints the advice for each of its maps.
fn advise(pid: u32, duration: Duration) -> Result<ExitCode, ProbeError> {
    // Short intervals: the first one's summaries are the baseline, the watch runs from its end.
    let interval = (duration / 4).clamp(Duration::from_millis(100), Duration::from_secs(1));
    let mut probe = Probe::attach(
        pid,
        Options {
            interval,
            ..Options::default()
        },
    )?;
    let first = probe.next_interval()?;
    let started = Instant::now();
    let mut last = probe.next_interval()?;
    while started.elapsed() < duration {
        last = probe.next_interval()?;
    }
    let seconds = started.elapsed().as_secs_f64();
    probe.detach();
    println!(
        "process {pid}: {} maps watched for {seconds:.1} s",
        last.maps.len()
    );
    for advice in probe::advise::advise(&first.maps, &last.maps, seconds) {
        print!("\n{advice}");
    }
    Ok(ExitCode::SUCCESS)
}

fn run(watch: &Watch, output: Output) -> Result<ExitCode, ProbeError> {
    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = Arc::clone(&stop);
        // Without a handler, Ctrl-C still detaches (the kernel drops the uprobes with the process).
        let _ = ctrlc::set_handler(move || stop.store(true, Ordering::Relaxed));
    }
    let (mut out, duration): (Box<dyn Write>, _) = match &output {
        Output::Json { path, duration } if path != "-" => (
            Box::new(File::create(path).map_err(|source| ProbeError::Io {
                what: format!("creating {path}"),
                source,
            })?),
            Some(*duration),
        ),
        Output::Json { duration, .. } => (Box::new(io::stdout()), Some(*duration)),
        Output::Table { duration } => (Box::new(io::stdout()), *duration),
    };
    let mut probe = Probe::attach(watch.pid, watch.options())?;
    let started = Instant::now();
    let clear = matches!(output, Output::Table { .. }) && io::stdout().is_terminal();
    while !stop.load(Ordering::Relaxed) {
        let interval = probe.next_interval()?;
        let written = if let Output::Json { .. } = output {
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
        if duration.is_some_and(|d| started.elapsed() >= d) {
            break;
        }
    }
    probe.detach();
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(line: &str) -> Result<Cli, String> {
        let words = std::iter::once("guarded-map-probe").chain(line.split_whitespace());
        Cli::try_parse_from(words).map_err(|e| e.to_string())
    }

    #[test]
    fn commands_and_options_parse() {
        let Command::Record {
            watch,
            duration,
            json,
        } = args("record --pid 42 --duration 2s --json out.jsonl --sample-every 8")
            .unwrap()
            .command
        else {
            panic!("not record");
        };
        assert_eq!((watch.pid, duration), (42, Duration::from_secs(2)));
        assert_eq!((json.as_str(), watch.sample_every), ("out.jsonl", 8));
        let Command::Top { watch, duration } =
            args("top --pid 1 --interval 250ms").unwrap().command
        else {
            panic!("not top");
        };
        assert_eq!(watch.interval, Duration::from_millis(250));
        assert_eq!(watch.sample_every, Options::default().sample_every);
        assert_eq!(duration, None);
        let Command::Advise { pid, duration } = args("advise --pid 7").unwrap().command else {
            panic!("not advise");
        };
        assert_eq!((pid, duration), (7, Duration::from_secs(3)));
        assert_eq!(parse_duration("1.5").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
    }

    #[test]
    fn bad_input_is_refused_with_a_reason() {
        for (line, says) in [
            ("top", "--pid <PID>"),
            ("top --pid abc", "invalid value 'abc' for '--pid <PID>'"),
            ("top --pid", "a value is required for '--pid <PID>'"),
            ("frob --pid 1", "unrecognized subcommand 'frob'"),
            ("top --pid 1 --json x", "unexpected argument '--json'"),
            ("record --pid 1 --duration 1s", "--json <FILE>"),
            ("top --pid 1 --interval 0", "bad duration"),
            ("top --pid 1 --interval 1ms", "at least 10ms"),
            ("top --pid 1 --duration 3h", "bad duration"),
        ] {
            let err = args(line).unwrap_err();
            assert!(err.contains(says), "{line}: {err}");
        }
    }

    #[test]
    fn help_is_not_an_error() {
        let err = Cli::try_parse_from(["guarded-map-probe", "--help"]).unwrap_err();
        assert_eq!(err.exit_code(), 0);
        assert!(err.to_string().contains("record"));
    }
}
