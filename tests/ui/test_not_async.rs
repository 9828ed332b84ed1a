#[runnel::test]
fn not_async() {}

fn main() {}
