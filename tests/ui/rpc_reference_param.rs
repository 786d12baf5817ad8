struct Echo;

#[volttron::agent]
impl Echo {
    #[rpc]
    fn echo(&mut self, text: &str) -> String {
        text.to_owned()
    }
}

fn main() {}
