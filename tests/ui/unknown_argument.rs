struct Monitor;

#[volttron::agent]
impl Monitor {
    #[periodic(sec = 5)]
    fn poll(&mut self) {}

    #[rpc(nmae = "status")]
    fn get_status(&mut self) -> String {
        String::new()
    }
}

fn main() {}
