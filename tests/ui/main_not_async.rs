#[runnel::main]
fn main() {}
