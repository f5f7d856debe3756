//! Checkpoint and restart of a tree with 20 network namespaces, kstate beside
//! CRIU (where it can take the tree) and beside the kernel's floor, in the
//! same run.
//!
//! Workload: `fixtures/netns.c 20` under `fixtures/reaper.c`: a root (in the
//! benchmark's own network namespace) and 20 children, each in a network
//! namespace of its own, set up (untimed, with `ip -batch`) with lo up, a
//! veth pair, two IPv4 and one IPv6 address, a route in main and one in
//! table 100.
//!
//! For each of `KSTATE_BENCH_REPS` (default 5) rounds after one warm-up:
//! time `kstate checkpoint -t ROOT -o IMAGE` (the tree is killed once the
//! image is written), then `kstate restart IMAGE -d` under
//! `bench/workloads/reaprun.c` (which times it from its fork to its exit);
//! check that the 20 namespaces came back (one is read back with `ip`); kill
//! the tree. Medians and ranges are shown.
//!
//! CRIU (`$CRIU`, else `criu` on PATH when `criu check` passes): `criu dump`
//! of the same tree is timed; `criu restore` is tried once and its verdict
//! printed (CRIU 4.2 refuses a task that needs a network namespace of its own
//! below the root: "Can't restore sub-task in NS").
//!
//! Floor, through the same rtnetlink library kstate uses, with no kstate in
//! between: (restart) starting the same 20-namespace tree until it is ready,
//! plus creating the same devices, addresses and routes in each namespace;
//! (checkpoint) listing the links, addresses and routes of the 20
//! namespaces, plus killing and reaping the tree.
//!
//! Run with `cargo bench --bench netns20` (as root).

#[path = "common/mod.rs"]
mod common;

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use kstate::objects::rtnl::Rtnl;
use netlink_packet_core::{NLM_F_CREATE, NLM_F_EXCL};
use netlink_packet_route::address::{AddressAttribute, AddressMessage};
use netlink_packet_route::link::{
    InfoData, InfoKind, InfoVeth, LinkAttribute, LinkFlags, LinkInfo, LinkMessage,
};
use netlink_packet_route::route::{RouteAddress, RouteAttribute, RouteMessage};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};

use common::{build_c, checkpoint_cmd, median, ms, range, sigkill, POLL};

const NS: usize = 20;
const DEFAULT_REPS: usize = 5;
const TIMEOUT: Duration = Duration::from_secs(60);

fn children(pid: i32) -> Vec<i32> {
    std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}

/// A subreaper child of ours (reaper, reaprun); dropping it kills what is
/// under it, then it, by pid, and waits (bounded).
struct Guarded(Child);

impl Guarded {
    fn pid(&self) -> i32 {
        self.0.id() as i32
    }
    fn kill_below(&self) {
        let mut stack = children(self.pid());
        while let Some(p) = stack.pop() {
            stack.extend(children(p));
            sigkill(p);
        }
    }
    fn wait_gone(&mut self) {
        let deadline = Instant::now() + TIMEOUT;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(POLL);
        }
        panic!("subreaper {} still has tasks", self.pid());
    }
}

impl Drop for Guarded {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            self.kill_below();
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

struct Bins {
    reaper: PathBuf,
    netns: PathBuf,
    reaprun: PathBuf,
    kstate: PathBuf,
}

/// Starts the tree; returns the guard, the root and the 20 children.
fn start(b: &Bins) -> (Guarded, i32, Vec<i32>) {
    let mut c = Command::new(&b.reaper)
        .arg(&b.netns)
        .arg(NS.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .expect("reaper");
    let out = c.stdout.take().expect("piped");
    let g = Guarded(c);
    let mut line = String::new();
    let _ = std::io::BufReader::new(out).read_line(&mut line);
    let pids: Vec<i32> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|p| p.parse().ok())
        .collect();
    assert!(
        line.starts_with("READY") && pids.len() == NS + 1,
        "bad READY line {line:?}"
    );
    (g, pids[0], pids[1..].to_vec())
}

fn setup_with_ip(kids: &[i32]) {
    for (i, k) in kids.iter().enumerate() {
        let batch = format!(
            "link set lo up\nlink add v0 type veth peer name v1\nlink set v0 up\nlink set v1 up\n\
             addr add 10.0.{i}.1/24 dev v0\naddr add 10.1.{i}.1/24 dev v1\n\
             addr add fd00:{i}::1/64 dev v0 nodad\n\
             route add 10.100.0.0/16 via 10.0.{i}.2 dev v0\nroute add 10.101.0.0/16 dev v1 table 100\n"
        );
        let mut c = Command::new("nsenter")
            .args(["-t", &k.to_string(), "-n", "ip", "-b", "-"])
            .stdin(Stdio::piped())
            .spawn()
            .expect("nsenter ip");
        std::io::Write::write_all(c.stdin.as_mut().expect("stdin"), batch.as_bytes())
            .expect("ip batch");
        drop(c.stdin.take());
        assert!(c.wait().expect("ip").success(), "ip -batch failed");
    }
}

fn ns_fd(pid: i32) -> std::fs::File {
    std::fs::File::open(format!("/proc/{pid}/ns/net")).expect("ns file")
}

/// The floor's device setup: the same objects, made straight over rtnetlink.
fn setup_with_rtnl(kids: &[i32]) {
    use std::os::fd::AsFd;
    for (i, k) in kids.iter().enumerate() {
        let f = ns_fd(*k);
        let mut s = Rtnl::open(Some(f.as_fd())).expect("rtnl");
        let mut peer = LinkMessage::default();
        peer.attributes.push(LinkAttribute::IfName("v1".into()));
        let mut m = LinkMessage::default();
        m.attributes.push(LinkAttribute::IfName("v0".into()));
        m.attributes.push(LinkAttribute::LinkInfo(vec![
            LinkInfo::Kind(InfoKind::Veth),
            LinkInfo::Data(InfoData::Veth(InfoVeth::Peer(peer))),
        ]));
        s.change(RouteNetlinkMessage::NewLink(m), NLM_F_CREATE | NLM_F_EXCL)
            .expect("veth");
        // lo is 1, v1 then v0 (the peer is registered first).
        for idx in [1u32, 2, 3] {
            let mut m = LinkMessage::default();
            m.header.index = idx;
            m.header.flags = LinkFlags::Up;
            m.header.change_mask = LinkFlags::Up;
            s.change(RouteNetlinkMessage::SetLink(m), 0).expect("up");
        }
        let addr = |idx: u32, a: std::net::IpAddr, len: u8| {
            let mut m = AddressMessage::default();
            m.header.family = if a.is_ipv4() {
                AddressFamily::Inet
            } else {
                AddressFamily::Inet6
            };
            m.header.prefix_len = len;
            m.header.index = idx;
            m.attributes.push(AddressAttribute::Local(a));
            m.attributes.push(AddressAttribute::Address(a));
            m
        };
        let i8 = i as u8;
        for (idx, a, len) in [
            (3u32, std::net::Ipv4Addr::new(10, 0, i8, 1).into(), 24u8),
            (2, std::net::Ipv4Addr::new(10, 1, i8, 1).into(), 24),
            (
                3,
                std::net::Ipv6Addr::new(0xfd00, i as u16, 0, 0, 0, 0, 0, 1).into(),
                64,
            ),
        ] {
            s.change(
                RouteNetlinkMessage::NewAddress(addr(idx, a, len)),
                NLM_F_CREATE | NLM_F_EXCL,
            )
            .expect("address");
        }
        let route = |dst: [u8; 4], via: Option<[u8; 4]>, oif: u32, table: u32| {
            let mut m = RouteMessage::default();
            m.header.address_family = AddressFamily::Inet;
            m.header.destination_prefix_length = 16;
            m.header.table = 254;
            m.header.protocol = netlink_packet_route::route::RouteProtocol::Boot;
            m.header.scope = if via.is_some() {
                netlink_packet_route::route::RouteScope::Universe
            } else {
                netlink_packet_route::route::RouteScope::Link
            };
            m.header.kind = netlink_packet_route::route::RouteType::Unicast;
            m.attributes
                .push(RouteAttribute::Destination(RouteAddress::Inet(dst.into())));
            if let Some(g) = via {
                m.attributes
                    .push(RouteAttribute::Gateway(RouteAddress::Inet(g.into())));
            }
            m.attributes.push(RouteAttribute::Oif(oif));
            m.attributes.push(RouteAttribute::Table(table));
            m
        };
        for m in [
            route([10, 100, 0, 0], Some([10, 0, i8, 2]), 3, 254),
            route([10, 101, 0, 0], None, 2, 100),
        ] {
            s.change(RouteNetlinkMessage::NewRoute(m), NLM_F_CREATE | NLM_F_EXCL)
                .expect("route");
        }
    }
}

/// The floor's listing: links, addresses, routes of both families.
fn list_with_rtnl(kids: &[i32]) -> usize {
    use std::os::fd::AsFd;
    let mut n = 0;
    for k in kids {
        let f = ns_fd(*k);
        let mut s = Rtnl::open(Some(f.as_fd())).expect("rtnl");
        n += s
            .dump(RouteNetlinkMessage::GetLink(LinkMessage::default()))
            .expect("links")
            .len();
        n += s
            .dump(RouteNetlinkMessage::GetAddress(AddressMessage::default()))
            .expect("addresses")
            .len();
        for fam in [AddressFamily::Inet, AddressFamily::Inet6] {
            let mut m = RouteMessage::default();
            m.header.address_family = fam;
            n += s
                .dump(RouteNetlinkMessage::GetRoute(m))
                .expect("routes")
                .len();
        }
    }
    n
}

/// Runs `prog args` under reaprun; returns the time reaprun measured and
/// the guard of what it left running.
fn run_detached(b: &Bins, prog: &Path, args: &[&str]) -> Result<(Duration, Guarded), String> {
    let mut c = Command::new(&b.reaprun)
        .arg(prog)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("reaprun");
    let out = c.stdout.take().expect("piped");
    let mut err = c.stderr.take().expect("piped");
    let g = Guarded(c);
    let mut line = String::new();
    let _ = std::io::BufReader::new(out).read_line(&mut line);
    let w: Vec<&str> = line.split_whitespace().collect();
    if w.len() != 3 || w[0] != "DONE" {
        let mut e = String::new();
        let _ = std::io::Read::read_to_string(&mut err, &mut e);
        return Err(format!("no DONE line ({line:?}): {e}"));
    }
    let status: i32 = w[1].parse().unwrap_or(-1);
    let ns: u64 = w[2].parse().unwrap_or(0);
    if status != 0 {
        let mut e = String::new();
        let _ = std::io::Read::read_to_string(&mut err, &mut e);
        return Err(format!("exit status {status}: {}", e.trim()));
    }
    Ok((Duration::from_nanos(ns), g))
}

fn timed(cmd: &mut Command) -> Result<Duration, String> {
    let t = Instant::now();
    let out = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .map_err(|e| e.to_string())?;
    let d = t.elapsed();
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).trim().to_string());
    }
    Ok(d)
}

fn find_criu() -> Result<PathBuf, String> {
    let bin = std::env::var_os("CRIU")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("criu"));
    match Command::new(&bin).arg("check").output() {
        Ok(o) if o.status.success() => Ok(bin),
        Ok(o) => Err(format!(
            "`{} check` failed: {}",
            bin.display(),
            String::from_utf8_lossy(&o.stderr).trim()
        )),
        Err(e) => Err(format!("`{} check` cannot run: {e}", bin.display())),
    }
}

fn main() {
    if !nix::unistd::Uid::effective().is_root() {
        eprintln!("netns20: needs root");
        return;
    }
    let reps = std::env::var("KSTATE_BENCH_REPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|n| *n > 0)
        .unwrap_or(DEFAULT_REPS);
    let root_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let bin_dir = tmp.join("bench-bin");
    std::fs::create_dir_all(&bin_dir).expect("bin dir");
    let dir = tmp.join(format!("netns20-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("work dir");
    let b = Bins {
        reaper: build_c(&root_dir.join("fixtures/reaper.c"), &bin_dir, "reaper"),
        netns: build_c(&root_dir.join("fixtures/netns.c"), &bin_dir, "netns"),
        reaprun: build_c(
            &root_dir.join("bench/workloads/reaprun.c"),
            &bin_dir,
            "reaprun",
        ),
        kstate: PathBuf::from(env!("CARGO_BIN_EXE_kstate")),
    };
    let img = dir.join("image.kst");
    let pidfile = dir.join("pid");
    println!("netns20: a root and {NS} children, each in a network namespace of its own with a veth pair, 3 addresses, 2 routes; {reps} rounds after a warm-up");

    // kstate.
    let (mut ck, mut rs, mut size) = (Vec::new(), Vec::new(), 0);
    for round in 0..=reps {
        let (mut g, root, kids) = start(&b);
        setup_with_ip(&kids);
        let _ = std::fs::remove_file(&img);
        let t = timed(&mut checkpoint_cmd(&b.kstate, root, &img))
            .unwrap_or_else(|e| panic!("kstate checkpoint: {e}"));
        g.wait_gone();
        size = std::fs::metadata(&img).map(|m| m.len()).unwrap_or(0);
        let _ = std::fs::remove_file(&pidfile);
        let (r, mut rg) = run_detached(
            &b,
            &b.kstate,
            &[
                "restart",
                img.to_str().expect("utf-8"),
                "-d",
                "--pidfile",
                pidfile.to_str().expect("utf-8"),
            ],
        )
        .unwrap_or_else(|e| panic!("kstate restart: {e}"));
        let mut now = children(root);
        now.sort_unstable();
        let mut want = kids.clone();
        want.sort_unstable();
        assert_eq!(now, want, "the 20 children are back");
        let shown = Command::new("nsenter")
            .args(["-t", &kids[NS - 1].to_string(), "-n", "ip", "-br", "addr"])
            .output()
            .expect("ip");
        let shown = String::from_utf8_lossy(&shown.stdout);
        assert!(
            shown.contains(&format!("10.0.{}.1/24", NS - 1)),
            "addresses back: {shown}"
        );
        rg.kill_below();
        rg.wait_gone();
        if round > 0 {
            ck.push(t);
            rs.push(r);
        }
    }

    // CRIU.
    let criu = find_criu();
    let mut criu_ck = Vec::new();
    let mut criu_restore = String::from("not tried");
    match &criu {
        Ok(c) => {
            for round in 0..=reps {
                let (mut g, root, kids) = start(&b);
                setup_with_ip(&kids);
                let d = dir.join("criu");
                let _ = std::fs::remove_dir_all(&d);
                std::fs::create_dir_all(&d).expect("criu dir");
                let t = timed(
                    Command::new(c)
                        .args(["dump", "-t", &root.to_string(), "-D"])
                        .arg(&d)
                        .args(["-o", "dump.log"]),
                );
                match t {
                    Ok(t) => {
                        g.wait_gone();
                        if round > 0 {
                            criu_ck.push(t);
                        }
                    }
                    Err(e) => {
                        criu_restore = format!("criu dump failed: {e}");
                        break;
                    }
                }
                if round == 0 {
                    let _ = std::fs::remove_file(&pidfile);
                    criu_restore = match run_detached(
                        &b,
                        c,
                        &[
                            "restore",
                            "-D",
                            d.to_str().expect("utf-8"),
                            "-d",
                            "-S",
                            "--pidfile",
                            pidfile.to_str().expect("utf-8"),
                            "-o",
                            "restore.log",
                        ],
                    ) {
                        Ok((t, mut rg)) => {
                            rg.kill_below();
                            rg.wait_gone();
                            format!("restored in {:.1} ms (one round)", ms(t))
                        }
                        Err(_) => {
                            let log =
                                std::fs::read_to_string(d.join("restore.log")).unwrap_or_default();
                            let why = log
                                .lines()
                                .rfind(|l| l.contains("Error"))
                                .unwrap_or("no error line")
                                .to_string();
                            format!("REFUSED: {why}")
                        }
                    };
                }
            }
        }
        Err(why) => criu_restore = format!("CRIU could not run here: {why}"),
    }

    // Floor.
    let (mut f_create, mut f_list) = (Vec::new(), Vec::new());
    for round in 0..=reps {
        let t = Instant::now();
        let (mut g, _root, kids) = start(&b);
        setup_with_rtnl(&kids);
        let made = t.elapsed();
        let t = Instant::now();
        let n = list_with_rtnl(&kids);
        assert!(n > NS * 5, "listed {n} objects");
        g.kill_below();
        g.wait_gone();
        let listed = t.elapsed();
        if round > 0 {
            f_create.push(made);
            f_list.push(listed);
        }
    }

    let (kc, kr) = (median(ck.clone()), median(rs.clone()));
    let (fc, fl) = (median(f_create.clone()), median(f_list.clone()));
    println!();
    println!("{:<44} {:>10} {:>14}", "row", "median ms", "range ms");
    println!(
        "{:<44} {:>10.1} {:>14}",
        "kstate checkpoint",
        ms(kc),
        range(&ck, 1)
    );
    println!(
        "{:<44} {:>10.1} {:>14}",
        "kstate restart -d",
        ms(kr),
        range(&rs, 1)
    );
    if !criu_ck.is_empty() {
        println!(
            "{:<44} {:>10.1} {:>14}",
            "criu dump (same run)",
            ms(median(criu_ck.clone())),
            range(&criu_ck, 1)
        );
    }
    println!(
        "{:<44} {:>10.1} {:>14}",
        "floor: list over rtnetlink + kill/reap",
        ms(fl),
        range(&f_list, 1)
    );
    println!(
        "{:<44} {:>10.1} {:>14}",
        "floor: start tree + make devices (rtnetlink)",
        ms(fc),
        range(&f_create, 1)
    );
    println!();
    println!("kstate image: {:.1} KB", size as f64 / 1024.0);
    println!("criu restore: {criu_restore}");
    if !criu_ck.is_empty() {
        println!(
            "criu dump / kstate checkpoint: {:.2}x",
            ms(median(criu_ck)) / ms(kc)
        );
    }
    println!(
        "kstate checkpoint vs floor: {:.1}x; restart vs floor: {:.1}x ({:.2} ms per namespace above it)",
        ms(kc) / ms(fl),
        ms(kr) / ms(fc),
        (ms(kr) - ms(fc)) / NS as f64
    );
    let _ = std::fs::remove_dir_all(&dir);
}
