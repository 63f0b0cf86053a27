use guarded_map::guarded_map;
use std::collections::HashMap;

#[guarded_map]
struct State {
    #[guarded(max_len = 10, max_len = 20)]
    routes: HashMap<String, u16>,
    #[guarded(rcu)]
    #[guarded(max_len = 5)]
    sessions: HashMap<u64, String>,
}

fn main() {}
