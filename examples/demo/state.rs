//! The demo service's state, declared with `#[guarded_map]`, and what one request does to it.

use std::collections::HashMap;

use guarded_map::guarded_map;

/// Sessions kept at most; a full table expires the older half.
pub const MAX_SESSIONS: usize = 50_000;
/// Routes the service knows.
pub const ROUTES: u64 = 200;

/// What a gateway keeps in memory.
#[guarded_map]
pub struct State {
    /// Upstream port by path prefix: read on every request, changed by deploys.
    #[guarded(rcu, name = "demo.routes")]
    pub routes: HashMap<String, u16>,
    /// Live sessions by id: validated on most requests, created by logins. Adaptive: `Rcu` while
    /// requests mostly read, `Sharded` once a login storm writes.
    #[guarded(adaptive(shards = 16), name = "demo.sessions", max_len = 50_000)]
    pub sessions: HashMap<u64, Session>,
    /// Responses by status code: bumped by every request (its cost model moves it to `Sharded`).
    #[guarded(adaptive(shards = 4), name = "demo.status_counts")]
    pub statuses: HashMap<u16, u64>,
}

/// One logged-in client.
#[derive(Clone, Copy, Debug, Default)]
pub struct Session {
    /// Requests made.
    pub requests: u32,
    /// The request tick it was last seen at.
    pub last_seen: u64,
}

/// One request, as the load generator draws it.
pub struct Request {
    pub route: u64,
    pub session: u64,
    /// A login: creates (or refreshes) the session instead of checking it.
    pub login: bool,
    /// A deploy: moves the route to another upstream port.
    pub deploy: bool,
    pub tick: u64,
}

impl State {
    /// A state with every route deployed.
    pub fn new() -> State {
        State {
            routes: (0..ROUTES)
                .map(|i| (route_path(i), 8000 + i as u16))
                .collect(),
            sessions: Default::default(),
            statuses: Default::default(),
        }
    }

    /// Serves one request; returns its status code.
    pub fn handle(&self, r: &Request) -> u16 {
        let path = route_path(r.route);
        if r.deploy {
            self.routes
                .insert(path.clone(), 9000 + (r.tick % 1000) as u16);
        }
        let status = match self.routes.get_cloned(path.as_str()) {
            None => 404,
            Some(_port) if r.login => self.login(r),
            // Most requests only check the session; one in eight records the activity.
            Some(_port) if !r.tick.is_multiple_of(8) => {
                match self.sessions.contains_key(&r.session) {
                    true => 200,
                    false => 401,
                }
            }
            Some(_port) => {
                let known = self.sessions.update(&r.session, |s| {
                    s.requests += 1;
                    s.last_seen = r.tick;
                });
                if known.is_some() { 200 } else { 401 }
            }
        };
        self.statuses.upsert(status, || 0, |n| *n += 1);
        status
    }

    fn login(&self, r: &Request) -> u16 {
        let session = Session {
            requests: 1,
            last_seen: r.tick,
        };
        if self.sessions.try_insert(r.session, session).is_ok() {
            return 201;
        }
        // Full: expire the sessions idle the longest (roughly the older half), then retry once.
        let horizon = self
            .sessions
            .snapshot()
            .iter()
            .map(|(_, s)| s.last_seen)
            .sum::<u64>()
            / MAX_SESSIONS as u64;
        self.sessions.retain(|_, s| s.last_seen > horizon);
        match self.sessions.try_insert(r.session, session) {
            Ok(_) => 201,
            Err(_) => 503,
        }
    }
}

fn route_path(i: u64) -> String {
    format!("/svc/{i}")
}
