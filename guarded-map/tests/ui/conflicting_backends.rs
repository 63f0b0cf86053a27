use guarded_map::guarded_map;
use std::collections::HashMap;

#[guarded_map]
struct State {
    #[guarded(rcu, sharded)]
    routes: HashMap<String, u16>,
    #[guarded(rcu(shards = 4))]
    sessions: HashMap<u64, String>,
}

fn main() {}
