//! The progress display on a real terminal: minibt runs under a pseudo-terminal (util-linux
//! `script`) and must redraw one line in place with the bar, percent, pieces, rates, peers and
//! ETA, then print the summary.

use crate::support::*;

#[test]
fn progress_display_redraws_on_a_terminal() {
    if std::process::Command::new("script")
        .arg("--version")
        .output()
        .is_err()
    {
        assert!(!in_ci(), "`script` (util-linux) is required in CI");
        eprintln!("skipped: `script` (util-linux) is not installed");
        return;
    }
    let dir = scratch_dir("progress-tty");
    let src = dir.join("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("f.bin"), pseudo_random_bytes(8, 4 * 1024 * 1024)).unwrap();
    let torrent = dir.join("t.torrent");
    make_torrent(
        &src.join("f.bin"),
        &["http://127.0.0.1:9/announce".into()],
        64 * 1024,
        &torrent,
    );
    let (_seed, port) = start_seed(
        &dir,
        "seed",
        &torrent,
        &src,
        "127.0.0.1",
        &["--no-tracker", "--max-upload-rate", "1500K"],
    );
    let out = dir.join("out");
    let cmd = format!(
        "{} {} -o {} --port 0 --no-tracker --peer 127.0.0.1:{port} --timeout 60",
        env!("CARGO_BIN_EXE_minibt"),
        torrent.display(),
        out.display()
    );
    let typescript = dir.join("typescript");
    let status = std::process::Command::new("script")
        .args(["-qec", &cmd])
        .arg(&typescript)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    let screen = String::from_utf8_lossy(&std::fs::read(&typescript).unwrap()).to_string();
    let redraws = screen.matches("\r\x1b[2K[").count();
    assert!(
        redraws >= 2,
        "expected the line to be redrawn in place, got: {screen:?}"
    );
    for part in ["%", "pieces", "down ", "up ", "peers 1/1", "ETA"] {
        assert!(screen.contains(part), "{part:?} missing from {screen:?}");
    }
    assert!(screen.contains("complete and verified"), "{screen:?}");
    assert_same_tree(&src.join("f.bin"), &out.join("f.bin"));
}
