struct Meter;

#[volttron::agent]
impl Meter {
    #[rpc]
    fn read(&mut self) -> f64 {
        0.0
    }

    #[rpc(name = "read")]
    fn read_cached(&mut self) -> f64 {
        0.0
    }
}

fn main() {}
