//! The demo's command line.

use std::time::Duration;

use clap::Parser;

/// A small gateway's state under a built-in load whose read/write mix changes every two seconds,
/// serving its guarded maps' metrics and printing one line per map every second.
#[derive(Parser, Debug)]
#[command(name = "demo")]
pub struct Args {
    /// Seconds to run; 0 runs until Ctrl-C.
    #[arg(long = "duration", value_name = "SECONDS", default_value_t = 10)]
    seconds: u64,
    /// Load-generating threads (1 to 256).
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u16).range(1..=256))]
    threads: u16,
    /// Address of the /metrics endpoint (IP:PORT; port 0 picks a free one).
    #[arg(long, value_name = "IP:PORT", default_value = guarded_map::prometheus::DEFAULT_ADDR)]
    pub listen: String,
}

impl Args {
    /// How long to run; `None`: until Ctrl-C.
    pub fn duration(&self) -> Option<Duration> {
        Some(self.seconds)
            .filter(|&s| s > 0)
            .map(Duration::from_secs)
    }

    /// Load-generating threads.
    pub fn threads(&self) -> usize {
        usize::from(self.threads)
    }
}
