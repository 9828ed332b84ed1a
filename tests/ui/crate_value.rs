#[runnel::main(crate = runnel)]
async fn not_a_string() {}

#[runnel::main(crate = "not a path")]
async fn not_a_path() {}

fn main() {
    not_a_string();
    not_a_path();
}
