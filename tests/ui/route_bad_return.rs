struct NotSerializable;

struct Hvac;

#[volttron::agent]
impl Hvac {
    #[route(GET, "/hvac/summary")]
    fn summary(&mut self) -> NotSerializable {
        NotSerializable
    }
}

fn main() {}
