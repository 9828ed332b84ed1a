// A `crate` path that does not resolve is reported at the string that names it.
#[runnel::main(crate = "no_such_crate::runnel")]
async fn main() {}
