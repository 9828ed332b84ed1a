#![deny(warnings)]

use std::error::Error;
use std::fmt;

#[derive(Debug)]
struct Refused;

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("refused")
    }
}

impl Error for Refused {}

// `?` converts into the declared error type; an early `return` coerces
// `Box<Refused>` into `Box<dyn Error>` as it would in a plain `fn`.
#[runnel::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let n: u32 = "1".parse()?;
    if n == 0 {
        return Err(Box::new(Refused));
    }
    Ok(())
}
