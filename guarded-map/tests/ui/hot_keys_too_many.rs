use std::collections::HashMap;
use guarded_map::guarded_map;

#[guarded_map]
struct State {
    #[guarded(sharded, hot_keys = 1000)]
    carts: HashMap<u64, u32>,
    #[guarded(rcu, hot_keys = "many")]
    prices: HashMap<u64, u32>,
}

fn main() {}
