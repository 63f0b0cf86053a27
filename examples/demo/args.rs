//! The demo's command line.

use std::time::Duration;

/// What the command line asked for.
pub struct Args {
    /// How long to run; `None`: until Ctrl-C.
    pub duration: Option<Duration>,
    /// Load-generating threads.
    pub threads: usize,
    /// Where to serve `/metrics`.
    pub listen: String,
}

pub const USAGE: &str = "usage: demo [--duration SECONDS] [--threads N] [--listen IP:PORT]
  --duration  seconds to run, 0 = until Ctrl-C (default 10)
  --threads   load-generating threads (default 2)
  --listen    address of the /metrics endpoint (default 127.0.0.1:9898)";

impl Args {
    /// Parses `args` (without the program name).
    pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Args, String> {
        let mut parsed = Args {
            duration: Some(Duration::from_secs(10)),
            threads: 2,
            listen: guarded_map::prometheus::DEFAULT_ADDR.to_owned(),
        };
        let mut args = args.into_iter();
        while let Some(flag) = args.next() {
            if flag == "--help" || flag == "-h" {
                return Err(String::new());
            }
            let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
            let number = || {
                value
                    .parse::<u64>()
                    .map_err(|_| format!("{flag} needs a whole number, not {value:?}"))
            };
            match flag.as_str() {
                "--duration" => {
                    parsed.duration = Some(number()?).filter(|&s| s > 0).map(Duration::from_secs);
                }
                "--threads" => {
                    parsed.threads = usize::try_from(number()?)
                        .ok()
                        .filter(|&n| (1..=256).contains(&n))
                        .ok_or_else(|| format!("--threads must be 1 to 256, not {value}"))?;
                }
                "--listen" => parsed.listen = value,
                _ => return Err(format!("unknown flag {flag:?}")),
            }
        }
        Ok(parsed)
    }
}
