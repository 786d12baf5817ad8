#[volttron::main]
fn main() {}

#[volttron::test]
fn starts() {}
