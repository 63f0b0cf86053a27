//! The load generator: requests drawn in phases whose read/write mix changes over time.

use super::state::{ROUTES, Request};

/// One phase of the load.
#[derive(Clone, Copy, Debug)]
pub struct Phase {
    pub name: &'static str,
    /// Per mille of requests that log in (session writes).
    pub logins: u64,
    /// Per mille of requests that deploy a route (rcu writes).
    pub deploys: u64,
    /// Distinct session ids in play.
    pub sessions: u64,
}

/// The phases, two seconds each, in a loop: mostly reads, a login storm, a rolling deploy.
pub const PHASES: [Phase; 3] = [
    Phase {
        name: "browse",
        logins: 20,
        deploys: 0,
        sessions: 20_000,
    },
    Phase {
        name: "login storm",
        logins: 600,
        deploys: 0,
        sessions: 200_000,
    },
    Phase {
        name: "rolling deploy",
        logins: 20,
        deploys: 5,
        sessions: 20_000,
    },
];

/// Seconds each phase lasts.
pub const PHASE_SECONDS: u64 = 2;

/// The phase in force `elapsed_secs` into the run.
pub fn phase_at(elapsed_secs: u64) -> Phase {
    PHASES[(elapsed_secs / PHASE_SECONDS) as usize % PHASES.len()]
}

/// A per-thread request source (xorshift: cheap, so the maps dominate the profile).
pub struct Load {
    x: u64,
    tick: u64,
}

impl Load {
    pub fn new(seed: u64) -> Load {
        Load {
            x: 0x2545_F491_4F6C_DD1D ^ (seed + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15),
            tick: 0,
        }
    }

    fn next(&mut self) -> u64 {
        self.x ^= self.x << 13;
        self.x ^= self.x >> 7;
        self.x ^= self.x << 17;
        self.x
    }

    /// The next request under `phase`.
    pub fn request(&mut self, phase: Phase) -> Request {
        self.tick += 1;
        let x = self.next();
        Request {
            route: x % ROUTES,
            session: (x >> 16) % phase.sessions,
            login: (x >> 40) % 1000 < phase.logins,
            deploy: (x >> 50) % 1000 < phase.deploys,
            tick: self.tick,
        }
    }
}
