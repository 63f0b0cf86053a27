use guarded_map::guarded_map;
use std::collections::HashMap;

#[guarded_map]
struct State {
    #[guarded(max_len = "10", name = 5, stats = 1, help = true)]
    routes: HashMap<String, u16>,
    #[guarded(sharded(shards = "8"), bpf_map = "a_name_that_is_too_long", rcu = true)]
    sessions: HashMap<u64, String>,
    #[guarded(name = LABEL)]
    other: HashMap<u8, u8>,
}

fn main() {}
