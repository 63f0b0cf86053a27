use guarded_map::guarded_map;

#[guarded_map]
struct State {
    #[guarded(rcu)]
    names: Vec<String>,
}

fn main() {}
