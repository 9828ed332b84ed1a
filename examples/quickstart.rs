//! The README's quick start, kept compiling and running (`cargo run --example quickstart`).

use runnel::net::{TcpListener, TcpStream};

#[runnel::main]
async fn main() -> std::io::Result<()> {
    // An echo server...
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    runnel::spawn(async move {
        loop {
            let (mut stream, _) = listener.accept().await.unwrap();
            runnel::spawn(async move {
                let mut buf = [0u8; 1024];
                loop {
                    let n = stream.read(&mut buf).await.unwrap();
                    if n == 0 {
                        break;
                    }
                    stream.write_all(&buf[..n]).await.unwrap();
                }
            });
        }
    });

    // ...and a client.
    let mut client = TcpStream::connect(addr).await?;
    client.write_all(b"hello").await?;
    let mut echoed = [0u8; 5];
    client.read_exact(&mut echoed).await?;
    assert_eq!(&echoed, b"hello");
    runnel::time::sleep(std::time::Duration::from_millis(1)).await;
    Ok(())
}
