// Code generic over specs names `SpecFor`; with `MapSpec` alone, the error asks for `SpecFor`, not
// for anything of the crate's internals.
use guarded_map::{GuardedMap, MapSpec};

fn bump<S: MapSpec>(map: &GuardedMap<u64, u64, S>) {
    map.insert(1, 1);
}

fn main() {}
