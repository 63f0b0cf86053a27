use std::collections::{BTreeMap, HashMap};
use guarded_map::guarded_map;

#[guarded_map]
struct State {
    #[guarded(ordered, shards = 4, hot_keys = 3, shrink = never)]
    book: BTreeMap<u64, u32>,
    #[guarded(rcu)]
    prices: BTreeMap<u64, u32>,
    #[guarded(ordered)]
    routes: HashMap<String, u16>,
    #[guarded(ordered, max_len = 10, name = "fine")]
    fine: BTreeMap<u64, u32>,
}

fn main() {}
