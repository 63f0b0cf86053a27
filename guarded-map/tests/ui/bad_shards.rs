use guarded_map::guarded_map;
use std::collections::HashMap;

#[guarded_map]
struct State {
    #[guarded(sharded(shards = 0))]
    a: HashMap<u8, u8>,
    #[guarded(sharded(shards = 12))]
    b: HashMap<u8, u8>,
    #[guarded(sharded(shards = 131072))]
    c: HashMap<u8, u8>,
}

fn main() {}
