use guarded_map::guarded_map;
use std::collections::HashMap;

#[guarded_map]
struct State {
    #[guarded(rcuu)]
    routes: HashMap<String, u16>,
    #[guarded(shards = 4)]
    sessions: HashMap<u64, String>,
    #[guarded(colour = "blue")]
    other: HashMap<u8, u8>,
}

#[guarded_map(every)]
struct Second {
    a: HashMap<u8, u8>,
}

fn main() {}
