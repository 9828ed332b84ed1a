#[runnel::main]
async fn main() -> Result<(), std::io::Error> {
    let n: u32 = "not a number";
    std::fs::read("x")?;
    let _ = n;
}
