//! `runnel::fs`: std::fs calls on the blocking pool. Round trips with checksums, `File`
//! write/seek/read (and a cancelled read that must not move the position), listings,
//! metadata, rename/remove, errors as `io::Error`s, the panic outside a runtime, and the
//! deadlock detector staying silent while a file operation blocks.

mod support;

use std::hash::Hasher;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use futures::StreamExt;
use runnel::fs::{self, File, OpenOptions};
use runnel::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt, SeekFrom};
use support::{panic_message, silence_expected_panics, wait_until};

/// A directory of its own under the system temp dir, removed on drop (even when the test
/// fails).
struct TempDir(PathBuf);

impl TempDir {
    fn new(test: &str) -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "runnel-fs-{test}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn checksum(bytes: &[u8]) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    h.write(bytes);
    h.finish()
}

/// 1 MiB of xorshift bytes: no two chunks alike.
fn random_bytes(len: usize) -> Vec<u8> {
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

#[runnel::test]
async fn round_trip_1_mib_with_checksum() {
    let dir = TempDir::new("round-trip");
    let data = random_bytes(1 << 20);
    let sum = checksum(&data);

    // Whole-file functions.
    fs::write(dir.path("a.bin"), &data).await.unwrap();
    let back = fs::read(dir.path("a.bin")).await.unwrap();
    assert_eq!(back.len(), data.len());
    assert_eq!(checksum(&back), sum);

    // Through File, in chunks smaller and larger than a job's buffer.
    let mut file = File::create(dir.path("b.bin")).await.unwrap();
    file.set_max_buf_size(64 * 1024);
    for chunk in data.chunks(100_000) {
        file.write_all(chunk).await.unwrap();
    }
    file.sync_all().await.unwrap();
    drop(file);
    let mut file = File::open(dir.path("b.bin")).await.unwrap();
    let mut back = Vec::new();
    file.read_to_end(&mut back).await.unwrap();
    assert_eq!(back.len(), data.len());
    assert_eq!(checksum(&back), sum);

    fs::write(dir.path("c.txt"), "héllo").await.unwrap();
    assert_eq!(
        fs::read_to_string(dir.path("c.txt")).await.unwrap(),
        "héllo"
    );
}

#[runnel::test]
async fn file_write_seek_read() {
    let dir = TempDir::new("seek");
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(dir.path("f"))
        .await
        .unwrap();
    file.write_all(b"hello world").await.unwrap();
    // The seek waits for the write in flight.
    assert_eq!(file.seek(SeekFrom::Start(6)).await.unwrap(), 6);
    let mut word = [0u8; 5];
    file.read_exact(&mut word).await.unwrap();
    assert_eq!(&word, b"world");
    assert_eq!(file.seek(SeekFrom::Current(-5)).await.unwrap(), 6);
    file.write_all(b"WORLD").await.unwrap();
    assert_eq!(file.seek(SeekFrom::End(-11)).await.unwrap(), 0);
    let mut all = String::new();
    file.read_to_string(&mut all).await.unwrap();
    assert_eq!(all, "hello WORLD");
    file.set_len(5).await.unwrap();
    file.flush().await.unwrap();
    assert_eq!(file.metadata().await.unwrap().len(), 5);
}

/// A read polled once and dropped may have read ahead on the pool: the next write must
/// land where the user's position is, not where the OS's is.
#[runnel::test]
async fn a_cancelled_read_does_not_move_the_position() {
    let dir = TempDir::new("cancel");
    fs::write(dir.path("f"), "abcdef").await.unwrap();
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(dir.path("f"))
        .await
        .unwrap();
    let mut buf = [0u8; 4];
    let read_len = {
        let mut read = file.read(&mut buf);
        let waker = futures::task::noop_waker();
        let mut cx = std::task::Context::from_waker(&waker);
        match std::future::Future::poll(std::pin::Pin::new(&mut read), &mut cx) {
            std::task::Poll::Ready(n) => n.unwrap(), // the job was quick: 4 bytes were read
            std::task::Poll::Pending => 0,           // dropped: as if never called
        }
    };
    file.write_all(b"XY").await.unwrap();
    file.flush().await.unwrap();
    let expected = if read_len == 4 { "abcdXY" } else { "XYcdef" };
    assert_eq!(fs::read_to_string(dir.path("f")).await.unwrap(), expected);
}

/// A write is accepted before it reaches the OS; its failure is reported by flush.
#[runnel::test]
async fn a_failed_background_write_is_reported_by_flush() {
    let dir = TempDir::new("write-error");
    fs::write(dir.path("ro"), "x").await.unwrap();
    let mut file = File::open(dir.path("ro")).await.unwrap(); // read-only
    assert_eq!(file.write(b"data").await.unwrap(), 4); // accepted
    let err = file.flush().await.unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EBADF), "{err}");
    file.flush().await.unwrap(); // reported once
}

#[runnel::test]
async fn read_dir_lists_every_entry() {
    let dir = TempDir::new("read-dir");
    // More than one batch (32 entries per blocking job).
    let mut expected: Vec<String> = (0..40).map(|i| format!("file-{i:02}")).collect();
    for name in &expected {
        fs::write(dir.path(name), name).await.unwrap();
    }
    fs::create_dir(dir.path("sub")).await.unwrap();
    expected.push("sub".into());

    let mut entries = fs::read_dir(&dir.0).await.unwrap();
    let mut names = Vec::new();
    while let Some(entry) = entries.next_entry().await.unwrap() {
        assert_eq!(entry.path(), dir.0.join(entry.file_name()));
        let is_dir = entry.file_type().await.unwrap().is_dir();
        assert_eq!(is_dir, entry.file_name() == "sub");
        names.push(entry.file_name().into_string().unwrap());
    }
    assert!(
        entries.next_entry().await.unwrap().is_none(),
        "fused at the end"
    );
    names.sort();
    assert_eq!(names, expected);

    // As a Stream.
    let streamed: Vec<_> = fs::read_dir(&dir.0).await.unwrap().collect().await;
    assert_eq!(streamed.len(), expected.len());
    assert!(streamed.iter().all(|e| e.is_ok()));
}

#[runnel::test]
async fn metadata_rename_remove() {
    let dir = TempDir::new("meta");
    fs::write(dir.path("a"), vec![7u8; 1234]).await.unwrap();
    let meta = fs::metadata(dir.path("a")).await.unwrap();
    assert!(meta.is_file());
    assert_eq!(meta.len(), 1234);
    assert!(fs::metadata(&dir.0).await.unwrap().is_dir());

    fs::rename(dir.path("a"), dir.path("b")).await.unwrap();
    assert!(!fs::try_exists(dir.path("a")).await.unwrap());
    assert_eq!(fs::read(dir.path("b")).await.unwrap(), vec![7u8; 1234]);

    fs::create_dir_all(dir.path("x/y/z")).await.unwrap();
    assert!(fs::metadata(dir.path("x/y/z")).await.unwrap().is_dir());

    fs::remove_file(dir.path("b")).await.unwrap();
    assert!(!fs::try_exists(dir.path("b")).await.unwrap());
    fs::remove_dir_all(dir.path("x")).await.unwrap();
    assert!(!fs::try_exists(dir.path("x")).await.unwrap());
}

#[runnel::test]
async fn errors_are_io_errors() {
    let dir = TempDir::new("errors");
    let missing = dir.path("missing");
    assert_eq!(
        fs::read(&missing).await.unwrap_err().kind(),
        ErrorKind::NotFound
    );
    assert_eq!(
        File::open(&missing).await.unwrap_err().kind(),
        ErrorKind::NotFound
    );
    assert_eq!(
        fs::read_dir(&missing).await.unwrap_err().kind(),
        ErrorKind::NotFound
    );
    assert_eq!(
        fs::metadata(&missing).await.unwrap_err().kind(),
        ErrorKind::NotFound
    );
    assert_eq!(
        fs::remove_file(&missing).await.unwrap_err().kind(),
        ErrorKind::NotFound
    );
    assert_eq!(
        fs::rename(&missing, dir.path("b"))
            .await
            .unwrap_err()
            .kind(),
        ErrorKind::NotFound
    );
    fs::write(dir.path("bad"), [0xff, 0xfe]).await.unwrap();
    assert_eq!(
        fs::read_to_string(dir.path("bad"))
            .await
            .unwrap_err()
            .kind(),
        ErrorKind::InvalidData
    );
    fs::write(dir.path("exists"), "").await.unwrap();
    assert_eq!(
        File::create_new(dir.path("exists"))
            .await
            .unwrap_err()
            .kind(),
        ErrorKind::AlreadyExists
    );
}

#[test]
fn outside_a_runtime_it_panics_saying_so() {
    silence_expected_panics();
    let payload =
        std::panic::catch_unwind(|| futures::executor::block_on(fs::read(Path::new("Cargo.toml"))))
            .unwrap_err();
    let message = panic_message(&*payload);
    assert!(
        message.contains("runnel::fs used outside a runnel runtime"),
        "{message}"
    );
}

/// A read blocked in the pool (on a FIFO with no writer yet) while every worker sleeps
/// and `block_on` waits: the blocking job counts as running, so no deadlock is reported.
/// The writer opens the FIFO only once the runtime is quiet. Run in a child process: a
/// wrong report would panic, and any bug that kept the FIFO unwritten would hang.
#[test]
fn a_blocked_file_read_is_not_a_deadlock() {
    support::in_child_process("a_blocked_file_read_is_not_a_deadlock", || {
        let dir = TempDir::new("fifo");
        let fifo = dir.path("fifo");
        let c_path = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: `c_path` is a valid NUL-terminated path that outlives the call.
        assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0);

        let rt = runnel::Builder::new()
            .worker_threads(2)
            .on_deadlock(runnel::OnDeadlock::Panic)
            .build()
            .unwrap();
        let reader = rt.handle().metrics_reader();
        let writer_path = fifo.clone();
        let writer = std::thread::spawn(move || {
            let quiet = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                wait_until("every worker sleeps while the read blocks", || {
                    let m = reader.snapshot();
                    m.idle == m.workers && m.blocking_threads >= 1
                })
            }));
            // Write whatever happened, so the read cannot hang the test.
            std::fs::write(&writer_path, b"through the fifo").unwrap();
            quiet.unwrap();
        });
        let data = rt.block_on(fs::read(fifo.clone())).unwrap();
        writer.join().unwrap();
        assert_eq!(data, b"through the fifo");
        assert_eq!(rt.metrics().deadlock_reports, 0);
    });
}
