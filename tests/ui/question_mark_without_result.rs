// `?` needs a `Result` return type: the error points at the `?` and at the body,
// as it would for a plain `fn`.
#[runnel::main]
async fn main() {
    std::fs::read("config.toml")?;
}
