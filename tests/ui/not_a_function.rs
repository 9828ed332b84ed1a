#[runnel::test]
struct NotAFunction;

fn main() {}
