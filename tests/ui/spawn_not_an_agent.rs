use volttron::prelude::*;

struct NotAnAgent;

fn start(platform: &Platform) {
    let _spawning = platform.spawn("x", NotAnAgent);
}

fn main() {}
