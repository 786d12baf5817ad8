struct Hvac;

#[volttron::agent]
impl Hvac {
    #[route(GET)]
    fn summary(&mut self) -> u32 {
        1
    }
}

fn main() {}
