#[runnel::main(on_deadlock = "explode")]
async fn main() {}

#[runnel::test(on_deadlock = "Report")]
async fn wrong_case() {}

#[runnel::test(on_deadlock = runnel::OnDeadlock::Ignore)]
async fn not_a_string() {}
