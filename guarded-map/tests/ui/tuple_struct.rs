use guarded_map::guarded_map;
use std::collections::HashMap;

#[guarded_map]
struct State(HashMap<u8, u8>);

fn main() {}
