struct Hvac;

#[volttron::agent]
impl Hvac {
    #[route(FETCH, "/hvac/summary")]
    fn summary(&mut self) -> u32 {
        1
    }
}

fn main() {}
