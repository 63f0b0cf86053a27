use std::collections::HashMap;

struct State {
    #[guarded(rcu)]
    routes: HashMap<String, u16>,
}

fn main() {}
