use guarded_map::guarded_map;
use std::collections::HashMap;

#[guarded_map]
struct State {
    #[guarded(adaptive(start = fast))]
    a: HashMap<u8, u8>,
    #[guarded(adaptive(start = rcu, start = sharded))]
    b: HashMap<u8, u8>,
    #[guarded(adaptive(begin = rcu))]
    c: HashMap<u8, u8>,
    #[guarded(sharded(start = rcu))]
    d: HashMap<u8, u8>,
    #[guarded(adaptive(pin = auto))]
    e: HashMap<u8, u8>,
    #[guarded(adaptive(start = sharded, pin = rcu))]
    f: HashMap<u8, u8>,
    #[guarded(rcu(pin = rcu))]
    g: HashMap<u8, u8>,
}

fn main() {}
