use guarded_map::guarded_map;
use std::collections::HashMap;

#[guarded_map]
struct State {
    #[guarded(max_len = 0)]
    routes: HashMap<String, u16>,
}

fn main() {}
