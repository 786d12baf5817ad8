use volttron::agent::route::WebRequest;

struct Hvac;

#[volttron::agent]
impl Hvac {
    #[route(POST, "/hvac/zones")]
    fn add_zone(&mut self, request: WebRequest, zone: String) -> u32 {
        let _ = (request, zone);
        1
    }
}

fn main() {}
