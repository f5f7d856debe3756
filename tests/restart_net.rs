//! Network namespaces in full (root): `fixtures/netns.c` is a root with
//! children each in a network namespace of its own; the test sets the
//! namespaces up with `ip` from outside, checkpoints, restarts, and reads
//! everything back with `ip -json` (not through kstate).
//!
//! Nothing here touches the host's network namespace: the workload's root
//! and kstate restart both run in a namespace the test made ("outer", held
//! by an `unshare -n sleep` killed by a guard), which stands for the
//! restarting process's namespace; the outer veth end and its bridge live
//! there and vanish with it.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::restart::*;
use serde_json::{json, Value};

fn scratch(name: &str) -> PathBuf {
    let p = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&p);
    std::fs::create_dir_all(&p).expect("scratch dir");
    p
}

/// A network namespace of the test's own, held by a sleeping process.
struct Outer {
    holder: Child,
}

impl Outer {
    fn new() -> Outer {
        common::require_root();
        let holder = Command::new("unshare")
            .args(["-n", "sleep", "600"])
            .stdin(Stdio::null())
            .spawn()
            .expect("unshare -n sleep");
        let pid = holder.id();
        let me = std::fs::read_link("/proc/self/ns/net").unwrap();
        common::wait_for(Duration::from_secs(5), "the outer namespace", || {
            std::fs::read_link(format!("/proc/{pid}/ns/net")).is_ok_and(|l| l != me)
        });
        Outer { holder }
    }
    fn pid(&self) -> i32 {
        self.holder.id() as i32
    }
    fn netns_arg(&self) -> String {
        format!("--net=/proc/{}/ns/net", self.pid())
    }
}

impl Drop for Outer {
    fn drop(&mut self) {
        let _ = self.holder.kill();
        let _ = self.holder.wait();
    }
}

/// `fixtures/netns.c N` under the reaper, inside `outer`.
fn start_tree(outer: &Outer, n: usize) -> Reaped {
    start_tree_with(outer, n, &[])
}

fn start_tree_with(outer: &Outer, n: usize, more: &[&str]) -> Reaped {
    let reaper_bin = common::build_fixture("reaper");
    let bin = common::build_fixture("netns");
    let mut reaper = Command::new("nsenter")
        .arg(outer.netns_arg())
        .arg(&reaper_bin)
        .arg(&bin)
        .arg(n.to_string())
        .args(more)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the reaper");
    let out = reaper.stdout.take().expect("piped");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = std::io::BufRead::read_line(&mut std::io::BufReader::new(out), &mut line);
        let _ = tx.send(line);
    });
    let line = rx.recv_timeout(Duration::from_secs(10)).unwrap_or_default();
    let mut words = line.split_whitespace();
    let root = match (words.next(), words.next().and_then(|p| p.parse().ok())) {
        (Some("READY"), Some(pid)) => pid,
        _ => {
            let _ = reaper.kill();
            let _ = reaper.wait();
            panic!("netns: bad READY line {line:?}");
        }
    };
    Reaped {
        reaper,
        root,
        extra: words.map(str::to_string).collect(),
    }
}

/// Runs `cmd` inside the network namespace of `pid`; panics on failure.
fn sh_in(pid: i32, cmd: &str) -> String {
    let out = Command::new("nsenter")
        .args(["-t", &pid.to_string(), "-n", "sh", "-c", cmd])
        .stdin(Stdio::null())
        .output()
        .expect("nsenter");
    assert!(
        out.status.success(),
        "in net of {pid}: {cmd}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn json_in(pid: i32, cmd: &str) -> Value {
    let text = sh_in(pid, cmd);
    if text.trim().is_empty() {
        return json!([]);
    }
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{cmd}: {e}: {text}"))
}

/// Keys of a link's `ip -d -j link` description that kstate keeps.
const LINK_KEYS: &[&str] = &[
    "ifindex",
    "ifname",
    "flags",
    "mtu",
    "address",
    "master",
    "txqlen",
    "ifalias",
    "link",
    "link_index",
    "link_netnsid",
];
const INFO_KEYS: &[&str] = &[
    "mode",
    "id",
    "port",
    "ttl",
    "learning",
    "type",
    "pi",
    "vnet_hdr",
    "multi_queue",
    "persist",
    "user",
    "group",
    "stp_state",
    "forward_delay",
    "hello_time",
    "max_age",
    "ageing_time",
    "priority",
    "vlan_filtering",
    "local",
    "remote",
    "link",
];

const PORT_KEYS: &[&str] = &[
    "cost",
    "priority",
    "learning",
    "flood",
    "hairpin",
    "guard",
    "root_block",
    "fastleave",
    "isolated",
    "bcast_flood",
    "mcast_flood",
    "proxy_arp",
];

fn pick(v: &Value, keys: &[&str]) -> Value {
    let mut m = serde_json::Map::new();
    for k in keys {
        if let Some(x) = v.get(*k) {
            m.insert((*k).into(), x.clone());
        }
    }
    Value::Object(m)
}

/// Everything kstate restores of one namespace, as `ip -json` and
/// /proc/sys show it, lifetimes apart (they count down: checked separately).
fn snapshot(pid: i32) -> Value {
    let links: Vec<Value> = json_in(pid, "ip -d -j link show")
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|l| {
            let mut p = pick(l, LINK_KEYS);
            p["kind"] = l["linkinfo"]["info_kind"].clone();
            p["info"] = pick(&l["linkinfo"]["info_data"], INFO_KEYS);
            p["slave_kind"] = l["linkinfo"]["info_slave_kind"].clone();
            p["port"] = pick(&l["linkinfo"]["info_slave_data"], PORT_KEYS);
            p
        })
        .collect();
    let addrs: Vec<Value> = json_in(pid, "ip -j addr show")
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .flat_map(|l| {
            let dev = l["ifname"].clone();
            l["addr_info"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .map(move |mut a| {
                    if let Some(m) = a.as_object_mut() {
                        m.remove("valid_life_time");
                        m.remove("preferred_life_time");
                        m.insert("dev".into(), dev.clone());
                    }
                    a
                })
        })
        .collect();
    // Sorted: routes the kernel makes as devices come up list in that order.
    let sorted = |v: Value| {
        let mut r: Vec<String> = v
            .as_array()
            .into_iter()
            .flatten()
            .map(|x| x.to_string())
            .collect();
        r.sort();
        r
    };
    let routes = json!([
        sorted(json_in(pid, "ip -4 -j route show table all")),
        sorted(json_in(pid, "ip -6 -j route show table all")),
    ]);
    let rules = json!([json_in(pid, "ip -4 -j rule"), json_in(pid, "ip -6 -j rule")]);
    let nsids = sh_in(pid, "ip netns list-id");
    let sysctls = sh_in(
        pid,
        "cd /proc/sys/net && for f in ipv4/ip_forward ipv4/ping_group_range unix/max_dgram_qlen ipv4/conf/*/* ipv6/conf/*/*; do [ -w $f ] && echo \"$f=$(cat $f 2>/dev/null)\"; done; true",
    );
    json!({"links": links, "addrs": addrs, "routes": routes, "rules": rules, "nsids": nsids, "sysctls": sysctls})
}

/// (address, valid_life_time) of addresses with a finite lifetime.
fn lifetimes(pid: i32) -> Vec<(String, u64)> {
    let mut out = Vec::new();
    for l in json_in(pid, "ip -j addr show")
        .as_array()
        .into_iter()
        .flatten()
    {
        for a in l["addr_info"].as_array().into_iter().flatten() {
            if let Some(v) = a["valid_life_time"].as_u64() {
                if v < u32::MAX as u64 {
                    out.push((a["local"].as_str().unwrap_or("").to_string(), v));
                }
            }
        }
    }
    out.sort();
    out
}

/// Waits (10 s at most) until no IPv6 address of the namespace of `pid` is
/// still in duplicate address detection.
fn settled(pid: i32) {
    common::wait_for(Duration::from_secs(10), "IPv6 DAD to finish", || {
        !sh_in(pid, "ip -j addr show").contains("\"tentative\"")
    });
}

fn assert_same(what: &str, a: &Value, b: &Value) {
    if a != b {
        // Show only what differs, element by element.
        let (xa, xb) = match (a.as_array(), b.as_array()) {
            (Some(x), Some(y)) => (x.clone(), y.clone()),
            _ => (vec![a.clone()], vec![b.clone()]),
        };
        let mut text = String::new();
        for i in 0..xa.len().max(xb.len()) {
            if xa.get(i) != xb.get(i) {
                text += &format!(
                    "  before: {}\n  after:  {}\n",
                    xa.get(i).map_or("-".into(), |v| v.to_string()),
                    xb.get(i).map_or("-".into(), |v| v.to_string())
                );
            }
        }
        panic!("{what} differs after restart:\n{text}");
    }
}

/// `kstate restart IMAGE` inside `outer`, waited for until the tree runs.
fn restart_in(outer: &Outer, image: &Path, dir: &Path, extra: &[&str]) -> Restarted {
    let net = outer.netns_arg();
    let prefix = [std::ffi::OsStr::new("nsenter"), std::ffi::OsStr::new(&net)];
    Restarted::start_under(&prefix, image, dir, extra)
}

fn kids(root: i32) -> Vec<i32> {
    let mut k = common::children(root);
    k.sort_unstable();
    k
}

/// The topology: A and B joined by a veth pair; B with a veth to
/// the outer namespace (on a bridge there, with `--external`); in A a
/// bridge with two ports, a macvlan, a vxlan and a tap; IPv4 and IPv6
/// addresses with labels and lifetimes; routes in main and table 100; a
/// policy rule; netns ids both ways; non-default sysctls. C is a third
/// namespace with only lo up and an address.
fn build_topology(outer: &Outer, a: i32, b: i32, c: i32, tag: &str) {
    let o = outer.pid();
    sh_in(
        o,
        &format!("ip link add obr{tag} type bridge && ip link set obr{tag} up"),
    );
    sh_in(
        b,
        &format!("ip link add eth0 type veth peer name ho{tag} netns {o}"),
    );
    sh_in(o, &format!("ip link set ho{tag} master obr{tag} up"));
    // An id for B in A before the veth makes the kernel pick one.
    set_nsid(a, b, 7);
    set_nsid(b, a, 3);
    sh_in(
        a,
        &format!("ip link add va type veth peer name vb netns {b}"),
    );
    sh_in(
        a,
        "ip link add br0 type bridge forward_delay 700 stp_state 0 && \
             ip link add p1 type veth peer name p2 && ip link add q1 type veth peer name q2 && \
             ip link set p1 master br0 && ip link set q1 master br0 && \
             ip link set p1 type bridge_slave cost 7 priority 9 learning off hairpin on && \
             ip link add mv0 link p2 type macvlan mode bridge && \
             ip link add vx0 type vxlan id 42 dstport 4789 local 10.1.0.1 dev va ttl 9 && \
             ip tuntap add dev tap0 mode tap user 1234 && \
             ip link set va mtu 1400 && ip link set va address 02:00:00:00:0a:01 && \
             ip link set va alias 'to b' && ip link set p2 txqueuelen 321 && \
             ip link set q2 promisc on && ip link set p2 arp off && \
             ip link set q2 addrgenmode none && \
             echo 0 > /proc/sys/net/ipv6/conf/q1/accept_dad && \
             for d in lo va br0 p1 p2 q1 q2 mv0 vx0 tap0; do ip link set $d up; done && \
             ip addr add 10.1.0.1/24 brd + dev va label va:one && \
             ip addr add 10.1.0.11/24 dev va label va:two valid_lft 3000 preferred_lft 2000 && \
             ip -6 addr add fd00::1/64 dev va nodad && \
             ip -6 addr add fd00::11/64 dev va nodad valid_lft 4000 preferred_lft 3500 && \
             ip addr add 10.2.0.1/24 dev br0 && \
             ip route add 10.9.0.0/16 via 10.1.0.2 metric 5 && \
             ip route add 10.8.0.0/16 dev va table 100 && \
             ip -6 route add fd09::/64 via fd00::2 dev va && \
             ip addr add 10.4.0.1 peer 10.4.0.2/32 dev q2 && \
             ip route add unreachable 10.66.0.0/16 && \
             ip route add 10.7.0.0/16 dev br0 src 10.2.0.1 proto static metric 9 && \
             ip -6 route add fd07::/64 dev va table 100 metric 3 && \
             ip rule add from 10.1.0.0/24 table 100 pref 1000 && \
             ip rule add fwmark 0x7 table 100 pref 1100 && \
             ip -6 rule add from fd00::/64 table 100 pref 900 && \
             echo 1 > /proc/sys/net/ipv4/ip_forward && \
             echo 2 > /proc/sys/net/ipv4/conf/va/rp_filter && \
             echo 33 > /proc/sys/net/ipv6/conf/va/hop_limit && \
             echo 77 > /proc/sys/net/unix/max_dgram_qlen && \
             echo '0 1000' > /proc/sys/net/ipv4/ping_group_range",
    );
    sh_in(
        b,
        "ip link set lo up && ip link set vb up && ip link set eth0 up && \
         ip addr add 10.1.0.2/24 dev vb && ip -6 addr add fd00::2/64 dev vb nodad && \
         ip addr add 192.168.77.2/24 dev eth0 && ip route add default via 192.168.77.1",
    );
    sh_in(c, "ip link set lo up && ip addr add 10.3.0.1/32 dev lo");
    // netns ids the other way, and C known to A.
    set_nsid(a, c, 5);
}

/// Gives the namespace of `target` id `id` in the namespace of `inside`
/// (RTM_NEWNSID through `ip netns set`, which takes a named netns: use a
/// private /run/netns in a mount namespace of its own).
fn set_nsid(inside: i32, target: i32, id: u32) {
    let out = Command::new("unshare")
        .args([
            "-m",
            "sh",
            "-c",
            &format!(
                "mount -t tmpfs none /run 2>/dev/null || true; mkdir -p /run/netns && \
                 touch /run/netns/t && mount --bind /proc/{target}/ns/net /run/netns/t && \
                 nsenter -t {inside} -n ip netns set t {id}"
            ),
        ])
        .stdin(Stdio::null())
        .output()
        .expect("unshare");
    assert!(
        out.status.success(),
        "set nsid: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn echo_over_veth(a: i32, b: i32) {
    let bin = common::build_fixture("netns");
    let mut server = Command::new("nsenter")
        .args(["-t", &a.to_string(), "-n"])
        .arg(&bin)
        .args(["echo", "7777"])
        .stdout(Stdio::piped())
        .stdin(Stdio::null())
        .spawn()
        .expect("echo server");
    let mut line = String::new();
    let _ = std::io::BufRead::read_line(
        &mut std::io::BufReader::new(server.stdout.take().unwrap()),
        &mut line,
    );
    assert_eq!(line.trim(), "LISTENING");
    let st = Command::new("nsenter")
        .args(["-t", &b.to_string(), "-n"])
        .arg(&bin)
        .args(["ask", "10.1.0.1", "7777"])
        .status()
        .expect("ask");
    let _ = server.kill();
    let _ = server.wait();
    assert!(st.success(), "no UDP echo from A to B over the veth");
}

#[test]
fn three_namespaces_come_back_with_every_item() {
    let dir = scratch("net-full");
    let outer = Outer::new();
    let mut w = start_tree(&outer, 3);
    let k: Vec<i32> = w.extra.iter().map(|p| p.parse().unwrap()).collect();
    let (a, b, c) = (k[0], k[1], k[2]);
    let tag = format!("{}", std::process::id() % 100000);
    build_topology(&outer, a, b, c, &tag);
    echo_over_veth(a, b);
    for p in [a, b, c] {
        settled(p);
    }
    let before: Vec<Value> = [a, b, c].iter().map(|p| snapshot(*p)).collect();
    let life_before = lifetimes(a);
    assert_eq!(life_before.len(), 2, "{life_before:?}");

    let img = dir.join("a.kst");
    checkpoint_ok(w.root, &img, &[]);
    w.wait_gone();
    let o = outer.pid();
    // The outer end goes with B's namespace (destroyed asynchronously).
    common::wait_for(Duration::from_secs(10), "the outer veth end to go", || {
        !sh_in(o, "ip -o link").contains(&format!("ho{tag}"))
    });

    let r = restart_in(
        &outer,
        &img,
        &dir,
        &["--external", &format!("veth[eth0]:ho{tag}@obr{tag}")],
    );
    let k2 = kids(r.root);
    assert_eq!(k2.len(), 3);
    let mut by_pid = k.clone();
    by_pid.sort_unstable();
    assert_eq!(k2, by_pid, "same pids");
    for (i, p) in [a, b, c].iter().enumerate() {
        // Operational state (IFF_RUNNING, NO-CARRIER) follows carrier
        // changes through the kernel's linkwatch, up to a second later.
        settled(*p);
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut after = snapshot(*p);
        while after != before[i] && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
            after = snapshot(*p);
        }
        for key in ["links", "addrs", "routes", "rules", "nsids", "sysctls"] {
            assert_same(
                &format!("{key} of namespace {}", ["A", "B", "C"][i]),
                &before[i][key],
                &after[key],
            );
        }
    }
    let life_after = lifetimes(a);
    for ((x, v0), (y, v1)) in life_before.iter().zip(life_after.iter()) {
        assert_eq!(x, y);
        assert!(v1 <= v0 && v0 - v1 < 120, "lifetime of {x}: {v0} then {v1}");
    }
    // The outer end is back on the bridge of the outer namespace.
    let outer_link = json_in(o, &format!("ip -j link show ho{tag}"));
    assert_eq!(outer_link[0]["master"], json!(format!("obr{tag}")));
    echo_over_veth(a, b);

    let img2 = dir.join("b.kst");
    checkpoint_ok(r.root, &img2, &["--leave-running"]);
    let (same, text) = diff(&img, &img2);
    assert!(same, "second checkpoint differs:\n{text}");
    // show draws the topology.
    let out = common::run_kstate(&["show", img.to_str().unwrap()], Duration::from_secs(30));
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(shown.contains("network:"), "{shown}");
    assert!(shown.contains("va <-> "), "{shown}");
    assert_eq!(r.finish().code(), Some(0));
    let _ = std::fs::remove_dir_all(&dir);
}

/// Runs kstate with `args` and `env` (inside `outer` when given); returns
/// (success, stderr). Bounded by 60 s.
fn kstate_in(outer: Option<&Outer>, args: &[&str], env: &[(&str, &str)]) -> (bool, String) {
    let mut cmd = match outer {
        Some(o) => {
            let mut c = Command::new("nsenter");
            c.arg(o.netns_arg()).arg(common::kstate_bin());
            c
        }
        None => Command::new(common::kstate_bin()),
    };
    cmd.args(args)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("kstate");
    let mut err = child.stderr.take().unwrap();
    let t = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut err, &mut s);
        s
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    let st = loop {
        if let Ok(Some(st)) = child.try_wait() {
            break st;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("kstate {args:?} did not finish within 60 s");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    (st.success(), t.join().unwrap_or_default())
}

#[test]
fn a_device_of_an_unsupported_kind_is_refused_and_the_tree_runs_on() {
    let dir = scratch("net-ifb");
    let outer = Outer::new();
    let w = start_tree(&outer, 1);
    let a: i32 = w.extra[0].parse().unwrap();
    sh_in(a, "ip link add ifb7 type ifb && ip link set lo up");
    let pids = common::tree_pids(w.root);
    let img = dir.join("a.kst");
    let (ok, err) = kstate_in(
        None,
        &[
            "checkpoint",
            "-t",
            &w.root.to_string(),
            "-o",
            img.to_str().unwrap(),
        ],
        &[],
    );
    assert!(!ok, "the checkpoint must fail");
    assert!(
        err.contains("device ifb7") && err.contains("kind ifb"),
        "the error names the device and its kind: {err}"
    );
    assert!(!img.exists(), "no image is left");
    common::assert_running_untraced(&pids);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn an_address_added_from_outside_during_the_checkpoint_fails_it() {
    change_during_checkpoint(
        "net-race",
        "ip addr add 10.5.0.2/32 dev lo",
        "its addresses changed while the checkpoint was taken",
    );
}

#[test]
fn a_sysctl_changed_from_outside_during_the_checkpoint_fails_it() {
    change_during_checkpoint(
        "net-race-sysctl",
        "echo 1 > /proc/sys/net/ipv4/conf/lo/forwarding",
        "its sysctls changed while the checkpoint was taken",
    );
}

/// Runs `change` in the tree's network namespace while kstate is paused
/// after reading it: the checkpoint must fail saying `expect`, leave no
/// image and leave the tree running.
fn change_during_checkpoint(name: &str, change: &str, expect: &str) {
    let dir = scratch(name);
    let outer = Outer::new();
    let w = start_tree(&outer, 1);
    let a: i32 = w.extra[0].parse().unwrap();
    sh_in(a, "ip link set lo up && ip addr add 10.5.0.1/32 dev lo");
    let pids = common::tree_pids(w.root);
    let img = dir.join("a.kst");
    let pause = dir.join("pause");
    std::fs::create_dir_all(&pause).unwrap();
    let root = w.root.to_string();
    let img_s = img.to_str().unwrap().to_string();
    let pause_s = pause.to_str().unwrap().to_string();
    let ck = std::thread::spawn(move || {
        kstate_in(
            None,
            &["checkpoint", "-t", &root, "-o", &img_s],
            &[
                ("KSTATE_TEST_PAUSE_AT", "after-net,before-exit"),
                ("KSTATE_TEST_PAUSE_DIR", &pause_s),
            ],
        )
    });
    common::wait_for(
        Duration::from_secs(20),
        "kstate to pause after the network",
        || pause.join("after-net").exists(),
    );
    // Another process (outside the tree) changes the namespace meanwhile.
    sh_in(a, change);
    std::fs::write(pause.join("after-net.go"), b"").unwrap();
    common::wait_for(Duration::from_secs(20), "kstate to fail", || {
        pause.join("before-exit").exists()
    });
    // kstate still runs: the tree must already be released, not frozen.
    common::assert_running_untraced(&pids);
    std::fs::write(pause.join("before-exit.go"), b"").unwrap();
    let (ok, err) = ck.join().unwrap();
    assert!(!ok, "the checkpoint must fail");
    assert!(err.contains(expect), "{err}");
    assert!(!img.exists(), "no image is left");
    common::assert_running_untraced(&pids);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A veth to the outer namespace (B's `eth0`) and one pair inside.
fn small_topology(outer: &Outer, a: i32, b: i32, tag: &str) {
    let o = outer.pid();
    sh_in(
        o,
        &format!("ip link add obr{tag} type bridge && ip link set obr{tag} up"),
    );
    sh_in(
        b,
        &format!("ip link add eth0 type veth peer name ho{tag} netns {o} && ip link set eth0 up"),
    );
    sh_in(
        a,
        &format!(
            "ip link add va type veth peer name vb netns {b} && ip link set va up && \
             ip addr add 10.1.0.1/24 dev va"
        ),
    );
    sh_in(b, "ip link set vb up && ip addr add 10.1.0.2/24 dev vb");
}

#[test]
fn a_veth_to_the_outside_needs_external_and_a_failed_restart_leaves_no_device() {
    let dir = scratch("net-ext");
    let outer = Outer::new();
    let mut w = start_tree(&outer, 2);
    let (a, b): (i32, i32) = (w.extra[0].parse().unwrap(), w.extra[1].parse().unwrap());
    let tag = format!("{}", std::process::id() % 100000);
    small_topology(&outer, a, b, &tag);
    let img = dir.join("a.kst");
    checkpoint_ok(w.root, &img, &[]);
    w.wait_gone();
    let o = outer.pid();
    let outer_has = |name: &str| {
        json_in(o, "ip -j link show")
            .as_array()
            .into_iter()
            .flatten()
            .any(|l| l["ifname"] == name)
    };
    common::wait_for(Duration::from_secs(10), "the outer veth end to go", || {
        !outer_has(&format!("ho{tag}"))
    });
    let image = img.to_str().unwrap();

    // Without --external: refused before anything is made.
    let (ok, err) = kstate_in(Some(&outer), &["restart", image], &[]);
    assert!(!ok);
    assert!(err.contains("--external veth[eth0]:OUTER"), "{err}");
    assert!(common::children(w.root).is_empty());

    // A bridge that does not exist: refused too.
    let ext = format!("veth[eth0]:ho{tag}@nobr{tag}");
    let (ok, err) = kstate_in(Some(&outer), &["restart", image, "--external", &ext], &[]);
    assert!(!ok);
    assert!(err.contains(&format!("no device nobr{tag}")), "{err}");

    // A restart that fails after the network is set up (the root's restore)
    // deletes the outer end it made.
    let ext = format!("veth[eth0]:ho{tag}@obr{tag}");
    let hook = format!("restore:{}", w.root);
    let (ok, err) = kstate_in(
        Some(&outer),
        &["restart", image, "--external", &ext],
        &[("KSTATE_TEST_FAIL_AT", &hook)],
    );
    assert!(!ok, "the hook makes the restart fail");
    assert!(err.contains("KSTATE_TEST_FAIL_AT"), "{err}");
    assert!(!outer_has(&format!("ho{tag}")), "the outer end was deleted");
    for p in [w.root, a, b] {
        assert!(
            !Path::new(&format!("/proc/{p}")).exists()
                || std::fs::read_to_string(format!("/proc/{p}/stat"))
                    .map(|s| s.contains(") Z"))
                    .unwrap_or(true),
            "task {p} left behind"
        );
    }

    // And the real one: the outer end on the bridge, the echo answered.
    let r = restart_in(&outer, &img, &dir, &["--external", &ext]);
    let link = json_in(o, &format!("ip -j link show ho{tag}"));
    assert_eq!(link[0]["master"], json!(format!("obr{tag}")));
    echo_over_veth(a, b);
    assert_eq!(r.finish().code(), Some(0));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn empty_ns_net_leaves_only_lo_and_the_other_namespaces_come_back() {
    let dir = scratch("net-empty");
    let outer = Outer::new();
    let mut w = start_tree(&outer, 1);
    let a: i32 = w.extra[0].parse().unwrap();
    // The root is given a new, empty namespace (only lo, down) instead of
    // the outer one; its child's own namespace still comes back in full.
    sh_in(a, "ip link set lo up && ip addr add 10.6.0.1/32 dev lo");
    let before = snapshot(a);
    let img = dir.join("a.kst");
    checkpoint_ok(w.root, &img, &[]);
    w.wait_gone();
    let r = restart_in(&outer, &img, &dir, &["--empty-ns", "net"]);
    let links = json_in(r.root, "ip -j link show");
    let names: Vec<&str> = links
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|l| l["ifname"].as_str())
        .collect();
    assert_eq!(names, ["lo"], "only lo in the empty namespace");
    assert_eq!(
        json_in(r.root, "ip -j addr show")[0]["addr_info"],
        json!([]),
        "lo is left down, without addresses"
    );
    settled(a);
    let after = snapshot(a);
    assert_same("addrs of the child", &before["addrs"], &after["addrs"]);
    assert_eq!(r.finish().code(), Some(0));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn dummy_and_vlan_come_back_where_the_kernel_has_them() {
    let dir = scratch("net-dummy");
    let outer = Outer::new();
    let mut w = start_tree(&outer, 1);
    let a: i32 = w.extra[0].parse().unwrap();
    // Probe in a namespace of the workload's: nothing on the host.
    let probe = Command::new("nsenter")
        .args(["-t", &a.to_string(), "-n", "sh", "-c"])
        .arg("ip link add d0 type dummy && ip link add v1 type veth peer name v2 && ip link add link v1 name v1.5 type vlan id 5")
        .output()
        .expect("nsenter");
    if !probe.status.success() {
        eprintln!(
            "skipped: this kernel cannot make dummy or vlan devices ({})",
            String::from_utf8_lossy(&probe.stderr).trim()
        );
        return;
    }
    sh_in(
        a,
        "for d in lo d0 v1 v2 v1.5; do ip link set $d up; done && ip addr add 10.8.0.1/24 dev v1.5",
    );
    settled(a);
    let before = snapshot(a);
    let img = dir.join("a.kst");
    checkpoint_ok(w.root, &img, &[]);
    w.wait_gone();
    let r = restart_in(&outer, &img, &dir, &[]);
    settled(a);
    let after = snapshot(a);
    for key in ["links", "addrs"] {
        assert_same(key, &before[key], &after[key]);
    }
    assert_eq!(r.finish().code(), Some(0));
    let _ = std::fs::remove_dir_all(&dir);
}

/// A task in a network namespace below a task in another of the tree's:
/// the grandchild's namespace, joined to its parent's by a veth, comes back
/// under the restored child, each task in its own.
#[test]
fn nested_network_namespaces_come_back() {
    let dir = scratch("net-nest");
    let outer = Outer::new();
    let mut w = start_tree_with(&outer, 1, &["nest"]);
    let (c, g): (i32, i32) = (w.extra[0].parse().unwrap(), w.extra[1].parse().unwrap());
    assert_eq!(common::children(c), [g], "the grandchild is the child's");
    sh_in(
        c,
        &format!(
            "ip link set lo up && ip link add ve0 type veth peer name ve1 netns {g} && \
             ip link set ve0 up && ip addr add 10.1.0.1/24 dev ve0"
        ),
    );
    sh_in(
        g,
        "ip link set lo up && ip link set ve1 up && ip addr add 10.1.0.2/24 dev ve1 && \
         ip route add default via 10.1.0.1",
    );
    settled(c);
    settled(g);
    let before = [snapshot(c), snapshot(g)];
    let img = dir.join("a.kst");
    checkpoint_ok(w.root, &img, &[]);
    w.wait_gone();
    let r = restart_in(&outer, &img, &dir, &[]);
    assert_eq!(common::children(c), [g]);
    let net = |p: i32| std::fs::read_link(format!("/proc/{p}/ns/net")).unwrap();
    assert_ne!(net(c), net(g), "each in its own namespace");
    assert_ne!(net(r.root), net(c));
    for (i, p) in [c, g].into_iter().enumerate() {
        settled(p);
        let after = snapshot(p);
        for key in ["links", "addrs", "routes", "rules", "nsids", "sysctls"] {
            assert_same(key, &before[i][key], &after[key]);
        }
    }
    echo_over_veth(c, g);
    assert_eq!(r.finish().code(), Some(0));
    let _ = std::fs::remove_dir_all(&dir);
}

/// Sysctls a workload left as a new namespace has them are flagged
/// `as_new` at checkpoint and left alone at restart; those it changed in
/// conf/all, conf/default and conf/lo are flagged not, and come back (with
/// the lo entries that all or default would spread to, and every entry of
/// another device, always compared).
#[test]
fn changed_sysctls_come_back_and_untouched_ones_are_flagged_as_new() {
    let dir = scratch("net-sysctl");
    let outer = Outer::new();
    let mut w = start_tree(&outer, 1);
    let a: i32 = w.extra[0].parse().unwrap();
    let changed = [
        ("ipv4/conf/all/log_martians", "1"),
        ("ipv6/conf/default/hop_limit", "55"),
        ("ipv4/conf/lo/arp_ignore", "1"),
    ];
    let mut cmd = String::from("ip link set lo up && ip link add v0 type veth peer name v1");
    for (n, v) in changed {
        cmd += &format!(" && echo {v} > /proc/sys/net/{n}");
    }
    sh_in(a, &cmd);
    let read = |p: i32| -> Vec<String> {
        let names: Vec<String> = changed
            .iter()
            .map(|(n, _)| format!("/proc/sys/net/{n}"))
            .collect();
        sh_in(p, &format!("cat {}", names.join(" ")))
            .split_whitespace()
            .map(str::to_string)
            .collect()
    };
    let want: Vec<String> = changed.iter().map(|(_, v)| v.to_string()).collect();
    assert_eq!(read(a), want);
    settled(a);
    let before = snapshot(a);

    let img = dir.join("a.kst");
    let out = common::run_kstate(
        &[
            "checkpoint",
            "-t",
            &w.root.to_string(),
            "-o",
            img.to_str().unwrap(),
        ],
        Duration::from_secs(60),
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "checkpoint: {err}");
    assert!(!err.contains("new network namespace"), "{err}");
    w.wait_gone();

    let out = common::run_kstate(
        &["show", "--json", img.to_str().unwrap()],
        Duration::from_secs(30),
    );
    let j = common::stdout_json(&out);
    let sysctls: Vec<&Value> = j["objects"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o["kind"] == "net_sysctl")
        .collect();
    let as_new = |name: &str| -> bool {
        let o = sysctls
            .iter()
            .find(|o| o["name"] == name)
            .unwrap_or_else(|| panic!("{name} recorded"));
        o["as_new"]
            .as_bool()
            .unwrap_or_else(|| panic!("{name}: as_new shown: {o}"))
    };
    for (n, _) in changed {
        assert!(!as_new(n), "{n} was changed");
    }
    // all changed: lo's entry of the same name is compared (a write to all
    // may spread to it); likewise default.
    assert!(!as_new("ipv4/conf/lo/log_martians"));
    assert!(!as_new("ipv6/conf/lo/hop_limit"));
    // Untouched everywhere.
    for n in [
        "ipv4/conf/all/rp_filter",
        "ipv4/conf/default/rp_filter",
        "ipv4/conf/lo/arp_announce",
        "ipv6/conf/all/hop_limit",
        "ipv6/conf/lo/mtu",
        "unix/max_dgram_qlen",
    ] {
        assert!(as_new(n), "{n} untouched");
    }
    // Other devices' entries never.
    let devices: Vec<&&Value> = sysctls
        .iter()
        .filter(|o| {
            let n = o["name"].as_str().unwrap_or("");
            n.contains("/conf/v0/") || n.contains("/conf/v1/")
        })
        .collect();
    assert!(!devices.is_empty());
    assert!(devices.iter().all(|o| o["as_new"] == false), "{devices:?}");
    let text = common::run_kstate(&["show", img.to_str().unwrap()], Duration::from_secs(30));
    let text = String::from_utf8_lossy(&text.stdout);
    let flagged = sysctls.iter().filter(|o| o["as_new"] == true).count();
    assert!(
        text.contains(&format!("{} sysctls ({flagged} as new)", sysctls.len())),
        "{text}"
    );

    let r = restart_in(&outer, &img, &dir, &[]);
    assert_eq!(read(a), want, "the changed ones came back");
    settled(a);
    let after = snapshot(a);
    assert_same("sysctls", &before["sysctls"], &after["sysctls"]);
    let img2 = dir.join("b.kst");
    checkpoint_ok(r.root, &img2, &["--leave-running"]);
    let (same, text) = diff(&img, &img2);
    assert!(same, "second checkpoint differs:\n{text}");
    assert_eq!(r.finish().code(), Some(0));
    let _ = std::fs::remove_dir_all(&dir);
}

mod support;

/// Crafted network records are refused by the reader, each with its own
/// field named, before a restart could act on them (no privileges needed).
#[test]
fn crafted_network_records_are_refused() {
    use core::mem::offset_of;
    use kstate::image::format::Kind;
    use kstate::image::net::{NetAddrRecord, NetLinkRecord, NetNsidRecord, NetSysctlRecord};
    use kstate::image::{FormatError, Image};
    let good = support::image_net();
    Image::parse(&good).expect("image_net is valid");
    let link = support::nth_of_kind(&good, Kind::NetLink, 1); // the veth va
    let addr = support::nth_of_kind(&good, Kind::NetAddr, 0);
    let nsid = support::nth_of_kind(&good, Kind::NetNsid, 0);
    let sysctl = support::nth_of_kind(&good, Kind::NetSysctl, 0);
    let cases: Vec<(&str, u32, usize, Vec<u8>, &str)> = vec![
        (
            "unknown link kind",
            link,
            offset_of!(NetLinkRecord, kind),
            99u32.to_le_bytes().to_vec(),
            "kind",
        ),
        (
            "ifindex 0",
            link,
            offset_of!(NetLinkRecord, ifindex),
            0u32.to_le_bytes().to_vec(),
            "ifindex",
        ),
        (
            "unknown link flag",
            link,
            offset_of!(NetLinkRecord, link_flags),
            2u32.to_le_bytes().to_vec(),
            "link_flags",
        ),
        (
            "a veth without its peer",
            link,
            offset_of!(NetLinkRecord, peer_ns),
            vec![0; 8],
            "peer_ns",
        ),
        (
            "a slash in a name",
            link,
            size_of::<NetLinkRecord>(),
            b"/".to_vec(),
            "name",
        ),
        (
            "a name longer than IFNAMSIZ",
            link,
            offset_of!(NetLinkRecord, name_len),
            16u32.to_le_bytes().to_vec(),
            "name_len",
        ),
        (
            "a hardware address of 33 bytes",
            link,
            offset_of!(NetLinkRecord, hwaddr_len),
            33u32.to_le_bytes().to_vec(),
            "hwaddr_len",
        ),
        (
            "family 7",
            addr,
            offset_of!(NetAddrRecord, family),
            vec![7],
            "family",
        ),
        (
            "prefix 33 for IPv4",
            addr,
            offset_of!(NetAddrRecord, prefix_len),
            vec![33],
            "prefix_len",
        ),
        (
            "an address without an address",
            addr,
            offset_of!(NetAddrRecord, present),
            4u32.to_le_bytes().to_vec(),
            "present",
        ),
        (
            "a negative nsid",
            nsid,
            offset_of!(NetNsidRecord, nsid),
            (-1i32).to_le_bytes().to_vec(),
            "nsid",
        ),
        (
            "an empty path component",
            sysctl,
            size_of::<NetSysctlRecord>() + 5,
            b"/".to_vec(),
            "name",
        ),
        (
            "a sysctl value of 5000 bytes",
            sysctl,
            offset_of!(NetSysctlRecord, value_len),
            5000u32.to_le_bytes().to_vec(),
            "value_len",
        ),
    ];
    for (what, id, at, bytes, field) in cases {
        let mut img = good.clone();
        support::patch_payload(&mut img, id, at, &bytes);
        match Image::parse(&img) {
            Ok(_) => panic!("{what}: accepted"),
            Err(e) => {
                let named = match &e {
                    FormatError::Invalid { field: f, .. }
                    | FormatError::NonZero { field: f, .. }
                    | FormatError::RefUndef { field: f, .. }
                    | FormatError::CountTooLarge { field: f, .. }
                    | FormatError::TrailingBytes { field: f, .. } => *f,
                    _ => "",
                };
                assert_eq!(named, field, "{what}: {e}");
            }
        }
    }
}

#[test]
fn show_and_diff_describe_network_records() {
    let dir = scratch("net-show");
    let img = dir.join("net.kst");
    std::fs::write(&img, support::image_net()).unwrap();
    let p = img.to_str().unwrap();
    let out = common::run_kstate(&["show", "--json", p], Duration::from_secs(30));
    let j = common::stdout_json(&out);
    let objects = j["objects"].as_array().unwrap();
    let va = objects
        .iter()
        .find(|o| o["kind"] == "net_link" && o["name"] == "va")
        .expect("va shown");
    assert_eq!(va["type"], "veth");
    assert_eq!(va["peer_ifindex"], 3);
    let sysctls: Vec<&Value> = objects
        .iter()
        .filter(|o| o["kind"] == "net_sysctl")
        .collect();
    assert_eq!(sysctls[0]["name"], "ipv4/conf/all/forwarding");
    assert_eq!(sysctls[0]["as_new"], false);
    assert_eq!(sysctls[1]["name"], "ipv4/conf/all/log_martians");
    assert_eq!(sysctls[1]["as_new"], true);
    let out = common::run_kstate(&["show", p], Duration::from_secs(30));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("va <-> vb in #6"), "{text}");
    assert!(text.contains("addr 10.1.0.1/24 va"), "{text}");
    assert!(text.contains("2 sysctls (1 as new)"), "{text}");
    let (same, d) = diff(&img, &img);
    assert!(same, "{d}");
    // A differing as_new flag is a difference (a restart treats the two
    // images differently), even with the same value.
    let mut other = support::image_net();
    let id = support::nth_of_kind(&other, kstate::image::format::Kind::NetSysctl, 1);
    support::patch_payload(
        &mut other,
        id,
        core::mem::offset_of!(kstate::image::net::NetSysctlRecord, flags),
        &0u32.to_le_bytes(),
    );
    let img2 = dir.join("net2.kst");
    std::fs::write(&img2, other).unwrap();
    let (same, d) = diff(&img, &img2);
    assert!(!same && d.contains("as_new"), "{d}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// `--empty-ns net` replaces the root's own network namespace, and with it
/// that of every task that shared it: nothing of the image is written into
/// the empty one.
#[test]
fn empty_ns_net_also_empties_the_namespace_the_children_shared() {
    let dir = scratch("net-empty-shared");
    let outer = Outer::new();
    let mut w = start_tree_with(&outer, 2, &["share"]);
    let kid: i32 = w.extra[0].parse().unwrap();
    let net = |p: i32| std::fs::read_link(format!("/proc/{p}/ns/net")).unwrap();
    assert_eq!(net(w.root), net(kid), "the children share the root's");
    sh_in(
        w.root,
        "ip link set lo up && ip addr add 10.6.0.1/32 dev lo && ip link add v0 type veth peer name v1",
    );
    let img = dir.join("a.kst");
    checkpoint_ok(w.root, &img, &[]);
    w.wait_gone();
    let r = restart_in(&outer, &img, &dir, &["--empty-ns", "net"]);
    assert_eq!(net(r.root), net(kid));
    for p in [r.root, kid] {
        let links = json_in(p, "ip -j link show");
        let names: Vec<&str> = links
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|l| l["ifname"].as_str())
            .collect();
        assert_eq!(names, ["lo"], "only lo in the empty namespace of {p}");
        assert_eq!(json_in(p, "ip -j addr show")[0]["addr_info"], json!([]));
    }
    assert_eq!(r.finish().code(), Some(0));
    let _ = std::fs::remove_dir_all(&dir);
}
