//! `kstate restart --join-ns` and `--empty-ns` (root): a checkpointed
//! counter restored into namespaces the test made, by pid and by path, into
//! a user namespace as another uid, into a new empty network namespace; and
//! the combinations that are refused before anything is created.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::restart::*;

fn scratch(name: &str) -> PathBuf {
    let p = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&p);
    std::fs::create_dir_all(&p).expect("scratch dir");
    p
}

/// A process in namespaces of its own (fixtures/nsholder.c), killed on drop.
struct Holder {
    child: Child,
    pid: i32,
}

impl Holder {
    fn start(args: &[&str]) -> Holder {
        let bin = common::build_fixture("nsholder");
        let mut child = Command::new(bin)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start nsholder");
        let out = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = std::io::BufRead::read_line(&mut std::io::BufReader::new(out), &mut line);
            let _ = tx.send(line);
        });
        let line = rx.recv_timeout(Duration::from_secs(10)).unwrap_or_default();
        let pid = line
            .strip_prefix("READY ")
            .and_then(|p| p.trim().parse().ok())
            .unwrap_or_else(|| {
                let _ = child.kill();
                let _ = child.wait();
                panic!("nsholder did not start: {line:?}")
            });
        Holder { child, pid }
    }
}

impl Drop for Holder {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn ns_link(pid: i32, ns: &str) -> String {
    std::fs::read_link(format!("/proc/{pid}/ns/{ns}"))
        .map(|l| l.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// A counter checkpointed (and killed); returns its image and count file.
fn counter_image(dir: &Path) -> (PathBuf, PathBuf, i32) {
    let out = dir.join("count.txt");
    let mut w = Reaped::start("counter", &[out.to_str().unwrap()]);
    common::wait_for(Duration::from_secs(5), "the counter to count", || {
        std::fs::read_to_string(&out)
            .map(|s| s.lines().count() > 3)
            .unwrap_or(false)
    });
    let img = dir.join("a.kst");
    checkpoint_ok(w.root, &img, &[]);
    w.wait_gone();
    (img, out, w.root)
}

fn counts_on(out: &Path) {
    let before = std::fs::read_to_string(out).unwrap().lines().count();
    common::wait_for(
        Duration::from_secs(5),
        "the restored counter to count on",
        || {
            std::fs::read_to_string(out)
                .map(|s| s.lines().count() > before + 3)
                .unwrap_or(false)
        },
    );
}

#[test]
fn join_net_by_pid_and_uts_by_path() {
    let dir = scratch("join-net-uts");
    let holder = Holder::start(&["net", "uts", "kstate-joined"]);
    let (img, out, _) = counter_image(&dir);
    let uts_path = format!("uts:/proc/{}/ns/uts", holder.pid);
    let net = format!("net:{}", holder.pid);
    let r = Restarted::start_with(&img, &dir, &["--join-ns", &net, "--join-ns", &uts_path]);
    assert_eq!(ns_link(r.root, "net"), ns_link(holder.pid, "net"));
    assert_eq!(ns_link(r.root, "uts"), ns_link(holder.pid, "uts"));
    assert_ne!(
        ns_link(r.root, "net"),
        ns_link(std::process::id() as i32, "net")
    );
    // The hostname reads back inside the restored task's uts namespace.
    let host = Command::new("nsenter")
        .args(["-t", &r.root.to_string(), "-u", "hostname"])
        .output()
        .expect("nsenter");
    assert_eq!(
        String::from_utf8_lossy(&host.stdout).trim(),
        "kstate-joined"
    );
    counts_on(&out);
    assert_eq!(r.finish().code(), Some(0), "the counter's own check");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn join_user_namespace_as_another_uid() {
    let dir = scratch("join-user");
    let holder = Holder::start(&["user"]);
    let (img, out, _) = counter_image(&dir);
    let user = format!("user:{}:1000,1001", holder.pid);
    let r = Restarted::start_with(&img, &dir, &["--join-ns", &user]);
    assert_eq!(ns_link(r.root, "user"), ns_link(holder.pid, "user"));
    // The holder's map is the identity on 0..65536: ids read the same outside.
    assert_eq!(
        common::proc_status_field(r.root, "Uid")
            .unwrap()
            .split_whitespace()
            .next(),
        Some("1000")
    );
    assert_eq!(
        common::proc_status_field(r.root, "Gid")
            .unwrap()
            .split_whitespace()
            .next(),
        Some("1001")
    );
    counts_on(&out);
    assert_eq!(r.finish().code(), Some(0), "the counter's own check");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn empty_net_namespace_has_only_lo() {
    let dir = scratch("empty-net");
    let (img, out, _) = counter_image(&dir);
    let r = Restarted::start_with(&img, &dir, &["--empty-ns", "net"]);
    assert_ne!(
        ns_link(r.root, "net"),
        ns_link(std::process::id() as i32, "net")
    );
    let dev = std::fs::read_to_string(format!("/proc/{}/net/dev", r.root)).unwrap();
    let links: Vec<&str> = dev
        .lines()
        .skip(2)
        .filter_map(|l| l.split(':').next())
        .map(str::trim)
        .collect();
    assert_eq!(links, vec!["lo"]);
    counts_on(&out);
    assert_eq!(r.finish().code(), Some(0), "the counter's own check");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn refused_combinations_create_nothing() {
    let dir = scratch("join-refused");
    let holder = Holder::start(&["net"]);
    let (img, _out, root) = counter_image(&dir);
    let img_s = img.to_str().unwrap().to_string();
    let h = holder.pid.to_string();
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            vec!["--join-ns".into(), format!("pid:{h}")],
            "a pid namespace cannot be joined",
        ),
        (
            vec![
                "--join-ns".into(),
                format!("net:{h}"),
                "--join-ns".into(),
                format!("net:{h}"),
            ],
            "given twice",
        ),
        (
            vec![
                "--join-ns".into(),
                format!("net:{h}"),
                "--empty-ns".into(),
                "net".into(),
            ],
            "both --join-ns and --empty-ns",
        ),
        (
            vec!["--join-ns".into(), format!("uts:/proc/{h}/ns/net")],
            "is not a uts namespace",
        ),
        (
            vec!["--join-ns".into(), "bogus:1".into()],
            "unknown namespace type",
        ),
        (
            vec!["--empty-ns".into(), "uts".into()],
            "only the network namespace",
        ),
    ];
    for (extra, why) in cases {
        let mut args = vec!["restart".to_string(), img_s.clone()];
        args.extend(extra.iter().cloned());
        let argv: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = common::run_kstate(&argv, Duration::from_secs(30));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{extra:?} must be refused");
        assert!(err.contains(why), "{extra:?}: {err}");
        assert!(
            !Path::new(&format!("/proc/{root}")).exists(),
            "{extra:?}: a task was created"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
