struct Echo;

#[volttron::agent]
impl Echo {
    #[rpc]
    fn inspect(&mut self) -> String {
        String::new()
    }
}

fn main() {}
