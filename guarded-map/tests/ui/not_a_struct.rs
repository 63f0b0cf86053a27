use guarded_map::guarded_map;

#[guarded_map]
enum State {
    Empty,
}

fn main() {}
