use std::collections::HashMap;
use guarded_map::guarded_map;

#[guarded_map]
struct State {
    #[guarded(sharded, shrink = sometimes)]
    carts: HashMap<u64, u32>,
    #[guarded(rcu, shrink = true)]
    prices: HashMap<u64, u32>,
    #[guarded(rcu, shrink = never)]
    fine: HashMap<u64, u32>,
}

fn main() {}
