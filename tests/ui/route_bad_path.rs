struct Hvac;

#[volttron::agent]
impl Hvac {
    #[route(GET, "hvac/summary?all")]
    fn summary(&mut self) -> u32 {
        1
    }
}

fn main() {}
