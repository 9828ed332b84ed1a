//! `runnel::io` and `runnel::fs` against tokio's equivalents, 2 workers each, in one run:
//! a TCP proxy (`copy_bidirectional`, client ↔ proxy ↔ echo over loopback), whole-file
//! reads, `File` reads, and small metadata calls (the cost of one blocking-pool hand-off).
//!
//! ```text
//! cargo bench --bench io              # 7 rounds, alternating which runtime goes first
//! cargo bench --bench io -- --smoke   # one tiny round (CI)
//! ```
//!
//! Every workload checks its result (bytes echoed equal, lengths equal), and the table
//! reports medians over rounds.

use std::path::{Path, PathBuf};
use std::time::Instant;

const WORKERS: usize = 2;
const FILE_LEN: usize = 1 << 20;

struct Sizes {
    proxy_bytes: usize,
    file_reads: usize,
    metadata_calls: usize,
    rounds: usize,
}

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 253) as u8).collect()
}

mod on_runnel {
    use super::*;
    use runnel::io::{AsyncReadExt, AsyncWriteExt};
    use runnel::net::{TcpListener, TcpStream};

    pub fn runtime() -> runnel::Runtime {
        runnel::Builder::new()
            .worker_threads(WORKERS)
            .build()
            .unwrap()
    }

    /// Seconds to move `len` bytes each way through the proxy.
    pub fn proxy(rt: &runnel::Runtime, len: usize) -> f64 {
        rt.block_on(async move {
            let echo_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let echo_addr = echo_listener.local_addr().unwrap();
            runnel::spawn(async move {
                let (stream, _) = echo_listener.accept().await.unwrap();
                let (mut rd, mut wr) = stream.into_split();
                runnel::io::copy(&mut rd, &mut wr).await.unwrap();
                wr.close().await.unwrap();
            });
            let proxy_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let proxy_addr = proxy_listener.local_addr().unwrap();
            let proxy = runnel::spawn(async move {
                let (mut client, _) = proxy_listener.accept().await.unwrap();
                let mut server = TcpStream::connect(echo_addr).await.unwrap();
                runnel::io::copy_bidirectional(&mut client, &mut server)
                    .await
                    .unwrap()
            });
            let sent = pattern(len);
            let start = Instant::now();
            let client = TcpStream::connect(proxy_addr).await.unwrap();
            let (mut rd, mut wr) = client.into_split();
            let to_send = sent.clone();
            let writer = runnel::spawn(async move {
                wr.write_all(&to_send).await.unwrap();
                wr.close().await.unwrap();
            });
            let mut got = Vec::with_capacity(len);
            rd.read_to_end(&mut got).await.unwrap();
            let secs = start.elapsed().as_secs_f64();
            writer.await.unwrap();
            assert!(got == sent);
            assert_eq!(proxy.await.unwrap(), (len as u64, len as u64));
            secs
        })
    }

    pub fn fs_read(rt: &runnel::Runtime, path: &Path, n: usize) -> f64 {
        let path = path.to_owned();
        rt.block_on(async move {
            let start = Instant::now();
            for _ in 0..n {
                assert_eq!(runnel::fs::read(&path).await.unwrap().len(), FILE_LEN);
            }
            start.elapsed().as_secs_f64()
        })
    }

    pub fn file_read(rt: &runnel::Runtime, path: &Path, n: usize) -> f64 {
        let path = path.to_owned();
        rt.block_on(async move {
            let start = Instant::now();
            let mut buf = Vec::with_capacity(FILE_LEN);
            for _ in 0..n {
                buf.clear();
                let mut file = runnel::fs::File::open(&path).await.unwrap();
                file.read_to_end(&mut buf).await.unwrap();
                assert_eq!(buf.len(), FILE_LEN);
            }
            start.elapsed().as_secs_f64()
        })
    }

    /// Reads in fixed 256 KiB chunks: the File's own cost, without `read_to_end`'s
    /// buffer management (futures-util zeroes the spare capacity, tokio's does not).
    pub fn file_chunks(rt: &runnel::Runtime, path: &Path, n: usize) -> f64 {
        let path = path.to_owned();
        rt.block_on(async move {
            let start = Instant::now();
            let mut buf = vec![0u8; 256 * 1024];
            for _ in 0..n {
                let mut file = runnel::fs::File::open(&path).await.unwrap();
                let mut total = 0;
                loop {
                    match file.read(&mut buf).await.unwrap() {
                        0 => break,
                        k => total += k,
                    }
                }
                assert_eq!(total, FILE_LEN);
            }
            start.elapsed().as_secs_f64()
        })
    }

    pub fn metadata(rt: &runnel::Runtime, path: &Path, n: usize) -> f64 {
        let path = path.to_owned();
        rt.block_on(async move {
            let start = Instant::now();
            for _ in 0..n {
                let len = runnel::fs::metadata(&path).await.unwrap().len();
                assert_eq!(len, FILE_LEN as u64);
            }
            start.elapsed().as_secs_f64()
        })
    }
}

mod on_tokio {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};

    pub fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(WORKERS)
            .enable_all()
            .build()
            .unwrap()
    }

    pub fn proxy(rt: &tokio::runtime::Runtime, len: usize) -> f64 {
        rt.block_on(async move {
            let echo_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let echo_addr = echo_listener.local_addr().unwrap();
            tokio::spawn(async move {
                let (stream, _) = echo_listener.accept().await.unwrap();
                let (mut rd, mut wr) = stream.into_split();
                tokio::io::copy(&mut rd, &mut wr).await.unwrap();
                wr.shutdown().await.unwrap();
            });
            let proxy_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let proxy_addr = proxy_listener.local_addr().unwrap();
            let proxy = tokio::spawn(async move {
                let (mut client, _) = proxy_listener.accept().await.unwrap();
                let mut server = TcpStream::connect(echo_addr).await.unwrap();
                tokio::io::copy_bidirectional(&mut client, &mut server)
                    .await
                    .unwrap()
            });
            let sent = pattern(len);
            let start = Instant::now();
            let client = TcpStream::connect(proxy_addr).await.unwrap();
            let (mut rd, mut wr) = client.into_split();
            let to_send = sent.clone();
            let writer = tokio::spawn(async move {
                wr.write_all(&to_send).await.unwrap();
                wr.shutdown().await.unwrap();
            });
            let mut got = Vec::with_capacity(len);
            rd.read_to_end(&mut got).await.unwrap();
            let secs = start.elapsed().as_secs_f64();
            writer.await.unwrap();
            assert!(got == sent);
            assert_eq!(proxy.await.unwrap(), (len as u64, len as u64));
            secs
        })
    }

    pub fn fs_read(rt: &tokio::runtime::Runtime, path: &Path, n: usize) -> f64 {
        let path = path.to_owned();
        rt.block_on(async move {
            let start = Instant::now();
            for _ in 0..n {
                assert_eq!(tokio::fs::read(&path).await.unwrap().len(), FILE_LEN);
            }
            start.elapsed().as_secs_f64()
        })
    }

    pub fn file_read(rt: &tokio::runtime::Runtime, path: &Path, n: usize) -> f64 {
        let path = path.to_owned();
        rt.block_on(async move {
            let start = Instant::now();
            let mut buf = Vec::with_capacity(FILE_LEN);
            for _ in 0..n {
                buf.clear();
                let mut file = tokio::fs::File::open(&path).await.unwrap();
                file.read_to_end(&mut buf).await.unwrap();
                assert_eq!(buf.len(), FILE_LEN);
            }
            start.elapsed().as_secs_f64()
        })
    }

    /// Reads in fixed 256 KiB chunks: the File's own cost, without `read_to_end`'s
    /// buffer management (futures-util zeroes the spare capacity, tokio's does not).
    pub fn file_chunks(rt: &tokio::runtime::Runtime, path: &Path, n: usize) -> f64 {
        let path = path.to_owned();
        rt.block_on(async move {
            let start = Instant::now();
            let mut buf = vec![0u8; 256 * 1024];
            for _ in 0..n {
                let mut file = tokio::fs::File::open(&path).await.unwrap();
                let mut total = 0;
                loop {
                    match file.read(&mut buf).await.unwrap() {
                        0 => break,
                        k => total += k,
                    }
                }
                assert_eq!(total, FILE_LEN);
            }
            start.elapsed().as_secs_f64()
        })
    }

    pub fn metadata(rt: &tokio::runtime::Runtime, path: &Path, n: usize) -> f64 {
        let path = path.to_owned();
        rt.block_on(async move {
            let start = Instant::now();
            for _ in 0..n {
                let len = tokio::fs::metadata(&path).await.unwrap().len();
                assert_eq!(len, FILE_LEN as u64);
            }
            start.elapsed().as_secs_f64()
        })
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn main() {
    let smoke = std::env::args().any(|a| a == "--smoke");
    let sizes = if smoke {
        Sizes {
            proxy_bytes: 1 << 20,
            file_reads: 4,
            metadata_calls: 20,
            rounds: 1,
        }
    } else {
        Sizes {
            proxy_bytes: 64 << 20,
            file_reads: 200,
            metadata_calls: 5_000,
            rounds: 7,
        }
    };
    let dir: PathBuf = std::env::temp_dir().join(format!("runnel-bench-io-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("1mib.bin");
    std::fs::write(&path, pattern(FILE_LEN)).unwrap();

    // [workload][runtime] -> seconds per round
    let mut secs = vec![[Vec::new(), Vec::new()]; 5];
    for round in 0..sizes.rounds {
        for turn in 0..2 {
            let runtime = (round + turn) % 2; // alternate who goes first
            if runtime == 0 {
                let rt = on_runnel::runtime();
                secs[0][0].push(on_runnel::proxy(&rt, sizes.proxy_bytes));
                secs[1][0].push(on_runnel::fs_read(&rt, &path, sizes.file_reads));
                secs[2][0].push(on_runnel::file_read(&rt, &path, sizes.file_reads));
                secs[3][0].push(on_runnel::metadata(&rt, &path, sizes.metadata_calls));
                secs[4][0].push(on_runnel::file_chunks(&rt, &path, sizes.file_reads));
            } else {
                let rt = on_tokio::runtime();
                secs[0][1].push(on_tokio::proxy(&rt, sizes.proxy_bytes));
                secs[1][1].push(on_tokio::fs_read(&rt, &path, sizes.file_reads));
                secs[2][1].push(on_tokio::file_read(&rt, &path, sizes.file_reads));
                secs[3][1].push(on_tokio::metadata(&rt, &path, sizes.metadata_calls));
                secs[4][1].push(on_tokio::file_chunks(&rt, &path, sizes.file_reads));
            }
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();

    let mib = sizes.proxy_bytes as f64 / (1 << 20) as f64;
    let rows: [(&str, &str, f64); 5] = [
        ("proxy copy_bidirectional, each way", "MiB/s", mib),
        ("fs::read 1 MiB", "reads/s", sizes.file_reads as f64),
        (
            "File::open + read_to_end 1 MiB",
            "reads/s",
            sizes.file_reads as f64,
        ),
        ("fs::metadata", "calls/s", sizes.metadata_calls as f64),
        (
            "File::open + read 1 MiB in 256 KiB reads",
            "files/s",
            sizes.file_reads as f64,
        ),
    ];
    println!("| workload | unit | runnel | tokio | runnel/tokio |");
    println!("| --- | --- | --- | --- | --- |");
    for (i, (name, unit, amount)) in rows.iter().enumerate() {
        let runnel = amount / median(secs[i][0].clone());
        let tokio = amount / median(secs[i][1].clone());
        println!(
            "| {name} | {unit} | {runnel:.0} | {tokio:.0} | {:.2} |",
            runnel / tokio
        );
    }
}
