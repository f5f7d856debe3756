//! Restart of the tree's own network namespaces: once every task exists (in
//! the namespaces clone3 made), kstate configures each namespace from the
//! outside, through sockets made inside it, in the order the objects depend
//! on each other: netns ids (so the kernel does not pick others when links
//! to other namespaces appear), links (a veth pair across two namespaces in
//! one request, with IFLA_NET_NS_FD), masters, link settings, sysctls (before
//! the devices come up, when per-device ones like addr_gen_mode and
//! accept_dad take effect), flags, addresses, routes, policy rules.
//!
//! Devices made in a new namespace vanish with it when a failed restart
//! kills its tasks; the outer end of a veth whose peer was outside the tree
//! (`--external veth[INNER]:OUTER[@BRIDGE]`) lives in kstate's own namespace
//! and is deleted by name by [`NetGuard`] unless the restart succeeds.

use std::collections::HashMap;
use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};

use netlink_packet_core::{NLM_F_CREATE, NLM_F_EXCL};
use netlink_packet_route::address::{
    AddressAttribute, AddressFlags, AddressHeaderFlags, AddressMessage, CacheInfo,
};
use netlink_packet_route::link::{
    InfoBridge, InfoBridgePort, InfoData, InfoKind, InfoMacVlan, InfoPortData, InfoPortKind,
    InfoVeth, InfoVlan, InfoVxlan, LinkAttribute, LinkFlags, LinkInfo, LinkMessage, MacVlanFlags,
};
use netlink_packet_route::nsid::{NsidAttribute, NsidMessage};
use netlink_packet_route::route::{RouteAddress, RouteAttribute, RouteFlags, RouteMessage};
use netlink_packet_route::rule::{RuleAttribute, RuleFlags, RuleMessage};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};

use super::rtnl::{in_netns, Rtnl};
use super::ObjectError;
use crate::image::net::{
    addr_present, link_flags, link_kind, route_present, rule_present, sysctl_flags, AddrView,
    LinkView, NetNsidRecord, NetRouteRecord, NetView, RuleView, SysctlView,
};
use crate::image::reader::Object;
use crate::image::Image;

/// One `--external veth[INNER]:OUTER[@BRIDGE]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExternalVeth {
    pub inner: String,
    pub outer: String,
    pub bridge: Option<String>,
}

fn ifname_ok(n: &str) -> bool {
    !n.is_empty()
        && n.len() <= 15
        && n.bytes()
            .all(|b| b != b'/' && b != b':' && b != b'@' && b.is_ascii_graphic())
}

impl ExternalVeth {
    /// Parses CRIU's syntax `veth[INNER]:OUTER[@BRIDGE]`.
    pub fn parse(spec: &str) -> Result<ExternalVeth, String> {
        let bad = || format!("--external {spec}: expected veth[INNER]:OUTER[@BRIDGE]");
        let rest = spec.strip_prefix("veth[").ok_or_else(bad)?;
        let (inner, rest) = rest.split_once("]:").ok_or_else(bad)?;
        let (outer, bridge) = match rest.split_once('@') {
            Some((o, b)) => (o, Some(b.to_string())),
            None => (rest, None),
        };
        if !ifname_ok(inner)
            || !ifname_ok(outer)
            || bridge.as_deref().is_some_and(|b| !ifname_ok(b))
        {
            return Err(format!(
                "--external {spec}: a device name is 1 to 15 printable characters, without / : @"
            ));
        }
        Ok(ExternalVeth {
            inner: inner.into(),
            outer: outer.into(),
            bridge,
        })
    }
}

/// Deletes the outer veth ends made in kstate's own namespace, unless
/// disarmed (the restart succeeded).
#[derive(Default)]
pub struct NetGuard {
    outer: Vec<String>,
}

impl NetGuard {
    pub fn disarm(mut self) {
        self.outer.clear();
    }
}

impl Drop for NetGuard {
    fn drop(&mut self) {
        if self.outer.is_empty() {
            return;
        }
        let Ok(mut sock) = Rtnl::open(None) else {
            log::warn!("restart: cannot open rtnetlink to delete {:?}", self.outer);
            return;
        };
        for name in &self.outer {
            let mut m = LinkMessage::default();
            m.attributes.push(LinkAttribute::IfName(name.clone()));
            match sock.change(RouteNetlinkMessage::DelLink(m), 0) {
                Ok(()) => log::debug!("restart: deleted the outer veth end {name}"),
                Err(e) => log::warn!("restart: cannot delete the outer veth end {name}: {e}"),
            }
        }
    }
}

/// The network records of an image, by net_ns record id.
#[derive(Default)]
struct NsItems<'a> {
    links: Vec<LinkView<'a>>,
    addrs: Vec<AddrView<'a>>,
    routes: Vec<NetRouteRecord>,
    rules: Vec<RuleView<'a>>,
    nsids: Vec<NetNsidRecord>,
    sysctls: Vec<SysctlView<'a>>,
}

fn items<'a>(img: &Image<'a>) -> Result<HashMap<u32, NsItems<'a>>, ObjectError> {
    let mut out: HashMap<u32, NsItems<'a>> = HashMap::new();
    use crate::image::Kind;
    let net = |k: Kind| {
        matches!(
            k,
            Kind::NetLink
                | Kind::NetAddr
                | Kind::NetRoute
                | Kind::NetRule
                | Kind::NetNsid
                | Kind::NetSysctl
        )
    };
    for (_, obj) in img.objects_of(net) {
        let obj = obj.map_err(|e| ObjectError::Net {
            ns: "?".into(),
            what: format!("image: {e}"),
        })?;
        let Object::Net(v) = obj else { continue };
        let it = out.entry(v.netns().id.get()).or_default();
        match v {
            NetView::Link(l) => it.links.push(l),
            NetView::Addr(a) => it.addrs.push(a),
            NetView::Route(r) => it.routes.push(r),
            NetView::Rule(r) => it.rules.push(r),
            NetView::Nsid(n) => it.nsids.push(n),
            NetView::Sysctl(s) => it.sysctls.push(s),
        }
    }
    Ok(out)
}

fn name(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Checks, before any task is made, that every veth whose peer was outside
/// the tree is named by an `--external`, that its outer name is free and its
/// bridge exists in kstate's own namespace.
pub fn preflight(img: &Image<'_>, external: &[ExternalVeth]) -> Result<(), ObjectError> {
    let all = items(img)?;
    let outside: Vec<String> = all
        .values()
        .flat_map(|it| it.links.iter())
        .filter(|l| l.rec.link_flags.get() & link_flags::PEER_OUTSIDE != 0)
        .map(|l| name(l.name))
        .collect();
    let err = |what: String| ObjectError::Net {
        ns: "of the image".into(),
        what,
    };
    for inner in &outside {
        if !external.iter().any(|e| &e.inner == inner) {
            return Err(err(format!(
                "veth {inner} has its peer outside the tree: give --external veth[{inner}]:OUTER[@BRIDGE]"
            )));
        }
    }
    if external.is_empty() {
        return Ok(());
    }
    let mut sock = Rtnl::open(None).map_err(|e| err(format!("rtnetlink socket: {e}")))?;
    let here = link_names(&mut sock).map_err(|e| err(format!("listing links: {e}")))?;
    for e in external {
        if !outside.contains(&e.inner) {
            return Err(err(format!(
                "--external veth[{}]: the image has no veth of that name with its peer outside the tree",
                e.inner
            )));
        }
        if here.contains_key(&e.outer) {
            return Err(err(format!(
                "--external veth[{}]:{}: a device {} exists already here",
                e.inner, e.outer, e.outer
            )));
        }
        if let Some(b) = &e.bridge {
            if !here.contains_key(b) {
                return Err(err(format!(
                    "--external veth[{}]:{}@{b}: there is no device {b} here",
                    e.inner, e.outer
                )));
            }
        }
    }
    Ok(())
}

fn link_names(sock: &mut Rtnl) -> io::Result<HashMap<String, u32>> {
    let mut out = HashMap::new();
    for m in sock.dump(RouteNetlinkMessage::GetLink(LinkMessage::default()))? {
        if let RouteNetlinkMessage::NewLink(l) = m {
            for a in &l.attributes {
                if let LinkAttribute::IfName(n) = a {
                    out.insert(n.clone(), l.header.index);
                }
            }
        }
    }
    Ok(out)
}

fn ipaddr(family: u8, b: &[u8; 16]) -> std::net::IpAddr {
    if family == libc::AF_INET as u8 {
        std::net::Ipv4Addr::new(b[0], b[1], b[2], b[3]).into()
    } else {
        std::net::Ipv6Addr::from(*b).into()
    }
}

fn route_addr(family: u8, b: &[u8; 16]) -> RouteAddress {
    ipaddr(family, b).into()
}

/// Flags a user sets on a link (the rest the kernel derives).
const SETTABLE_LINK_FLAGS: u32 = (libc::IFF_UP
    | libc::IFF_DEBUG
    | libc::IFF_NOARP
    | libc::IFF_PROMISC
    | libc::IFF_ALLMULTI
    | libc::IFF_MULTICAST
    | libc::IFF_DYNAMIC) as u32;
/// Address flags a user sets (IFA_F_NODAD, HOMEADDRESS, MANAGETEMPADDR,
/// NOPREFIXROUTE, MCAUTOJOIN).
const SETTABLE_ADDR_FLAGS: u32 = 0x02 | 0x10 | 0x100 | 0x200 | 0x400;
const RTPROT_KERNEL: u8 = 2;
const RTPROT_RA: u8 = 9;

/// One namespace being configured.
struct Target<'a> {
    id: u32,
    fd: &'a OwnedFd,
    sock: Rtnl,
}

/// Configures the tree's network namespaces. `netns` maps each net_ns
/// record id to the namespace made for it (a restored task's
/// /proc/PID/ns/net); namespaces not in it are left alone (joined or empty
/// ones). Returns the guard of the devices made outside.
pub fn restore(
    img: &Image<'_>,
    netns: &HashMap<u32, OwnedFd>,
    external: &[ExternalVeth],
) -> Result<NetGuard, ObjectError> {
    let mut guard = NetGuard::default();
    if netns.is_empty() {
        // No network namespace of the tree's own is left to configure.
        return Ok(guard);
    }
    let all = items(img)?;
    let err = |id: u32, what: String| ObjectError::Net {
        ns: format!("net_ns #{id}"),
        what,
    };
    let own = std::fs::File::open("/proc/thread-self/ns/net")
        .map(OwnedFd::from)
        .map_err(|e| err(0, format!("opening kstate's own network namespace: {e}")))?;
    let mut ids: Vec<u32> = netns
        .keys()
        .copied()
        .filter(|i| all.contains_key(i))
        .collect();
    ids.sort_unstable();
    let mut targets: Vec<Target<'_>> = Vec::new();
    for id in &ids {
        let fd = &netns[id];
        let sock = Rtnl::open(Some(fd.as_fd()))
            .map_err(|e| err(*id, format!("rtnetlink socket inside it: {e}")))?;
        targets.push(Target { id: *id, fd, sock });
    }
    let fd_of = |id: u32| -> &OwnedFd { netns.get(&id).unwrap_or(&own) };
    // 1. Netns ids.
    for t in &mut targets {
        for n in &all[&t.id].nsids {
            let mut m = NsidMessage::default();
            m.attributes
                .push(NsidAttribute::Fd(fd_of(n.peer.id.get()).as_raw_fd() as u32));
            m.attributes.push(NsidAttribute::Id(n.nsid.get()));
            let r = t
                .sock
                .change(RouteNetlinkMessage::NewNsId(m), NLM_F_CREATE | NLM_F_EXCL);
            match r {
                // Every external namespace stands for kstate's own: only
                // the first id given to one of them can be set.
                Err(e)
                    if !netns.contains_key(&n.peer.id.get())
                        && e.raw_os_error() == Some(libc::EEXIST) =>
                {
                    log::warn!(
                        "restart: net_ns #{}: id {} of an outside namespace not set again: {e}",
                        t.id,
                        n.nsid.get()
                    )
                }
                r => r.map_err(|e| err(t.id, format!("setting netns id {}: {e}", n.nsid.get())))?,
            }
        }
    }
    // 2. Links: those without a lower device first, then macvlans and
    // vxlans over one.
    for pass in 0..2 {
        for t in &mut targets {
            for l in &all[&t.id].links {
                let lower = l.rec.link.get() != 0;
                if (pass == 0) == lower {
                    continue;
                }
                log::debug!(
                    "restart: net_ns #{}: link {} {} ({})",
                    t.id,
                    l.rec.ifindex.get(),
                    name(l.name),
                    link_kind::name(l.rec.kind.get())
                );
                create_link(t, l, &all, netns, external, &mut guard).map_err(|e| {
                    err(
                        t.id,
                        format!(
                            "creating {} {}: {e}",
                            link_kind::name(l.rec.kind.get()),
                            name(l.name)
                        ),
                    )
                })?;
            }
        }
    }
    // 3. Masters, settings, sysctls, flags.
    for t in &mut targets {
        let links = &all[&t.id].links;
        for l in links.iter().filter(|l| l.rec.master.get() != 0) {
            let mut m = LinkMessage::default();
            m.header.index = l.rec.ifindex.get();
            m.attributes
                .push(LinkAttribute::Controller(l.rec.master.get()));
            t.sock
                .change(RouteNetlinkMessage::SetLink(m), 0)
                .map_err(|e| {
                    err(
                        t.id,
                        format!("attaching {} to its master: {e}", name(l.name)),
                    )
                })?;
            let mut m = LinkMessage::default();
            m.header.index = l.rec.ifindex.get();
            m.attributes.push(LinkAttribute::LinkInfo(vec![
                LinkInfo::PortKind(InfoPortKind::Bridge),
                LinkInfo::PortData(InfoPortData::BridgePort(bridge_port(&l.rec.port))),
            ]));
            t.sock
                .change(RouteNetlinkMessage::NewLink(m), 0)
                .map_err(|e| {
                    err(
                        t.id,
                        format!(
                            "setting the bridge port attributes of {}: {e}",
                            name(l.name)
                        ),
                    )
                })?;
        }
        for l in links {
            let r = &l.rec;
            let mut m = LinkMessage::default();
            m.header.index = r.ifindex.get();
            m.attributes.push(LinkAttribute::Mtu(r.mtu.get()));
            m.attributes.push(LinkAttribute::TxQueueLen(r.txqlen.get()));
            let hw = &r.hwaddr[..(r.hwaddr_len.get() as usize).min(32)];
            if r.kind.get() != link_kind::LOOPBACK && !hw.is_empty() {
                m.attributes.push(LinkAttribute::Address(hw.to_vec()));
            }
            if !l.alias.is_empty() {
                m.attributes.push(LinkAttribute::IfAlias(name(l.alias)));
            }
            t.sock
                .change(RouteNetlinkMessage::SetLink(m), 0)
                .map_err(|e| {
                    err(
                        t.id,
                        format!("setting mtu, queue, address of {}: {e}", name(l.name)),
                    )
                })?;
        }
        // Sysctls before the devices come up: a device's accept_dad,
        // addr_gen_mode, disable_ipv6 take effect then (the link-local
        // address the kernel makes, or not). Written in the order read: all,
        // default, then each device. Those recorded as a new namespace has
        // them (AS_NEW) are neither read nor written: this one is new.
        let recorded = &all[&t.id].sysctls;
        let sysctls: Vec<&SysctlView<'_>> = recorded
            .iter()
            .filter(|s| s.rec.flags.get() & sysctl_flags::AS_NEW == 0)
            .collect();
        log::debug!(
            "restart: net_ns #{}: {} of {} sysctls left as the new namespace has them",
            t.id,
            recorded.len() - sysctls.len(),
            recorded.len()
        );
        if !sysctls.is_empty() {
            in_netns(Some(t.fd.as_fd()), || write_sysctls(&sysctls))
                .map_err(|e| err(t.id, format!("sysctl {e}")))?;
        }
        for l in links {
            let mut m = LinkMessage::default();
            m.header.index = l.rec.ifindex.get();
            m.header.flags = LinkFlags::from_bits_retain(l.rec.flags.get() & SETTABLE_LINK_FLAGS);
            m.header.change_mask = LinkFlags::from_bits_retain(SETTABLE_LINK_FLAGS);
            t.sock
                .change(RouteNetlinkMessage::SetLink(m), 0)
                .map_err(|e| err(t.id, format!("setting the flags of {}: {e}", name(l.name))))?;
        }
    }
    // 4. Addresses, 5. routes, 6. rules.
    for t in &mut targets {
        let it = &all[&t.id];
        // IPv4 addresses are appended to their device's list, IPv6 ones
        // put first among those of their scope: adding the IPv6 ones in
        // reverse keeps the order the image lists them in.
        let v4 = it
            .addrs
            .iter()
            .filter(|a| a.rec.family == libc::AF_INET as u8);
        let v6 = it
            .addrs
            .iter()
            .filter(|a| a.rec.family != libc::AF_INET as u8)
            .rev();
        for a in v4.chain(v6) {
            if (1..=3).contains(&a.rec.proto) {
                continue; // made by the kernel (lo's, link-local, from RAs)
            }
            t.sock
                .change(
                    RouteNetlinkMessage::NewAddress(addr_msg(a)),
                    NLM_F_CREATE | NLM_F_EXCL,
                )
                .or_else(exists_ok)
                .map_err(|e| {
                    err(
                        t.id,
                        format!(
                            "adding address {}: {e}",
                            crate::image::net::addr_text(
                                a.rec.family,
                                &if a.rec.present.get() & addr_present::LOCAL != 0 {
                                    a.rec.local
                                } else {
                                    a.rec.address
                                }
                            )
                        ),
                    )
                })?;
        }
        let mut routes: Vec<&NetRouteRecord> = it
            .routes
            .iter()
            .filter(|r| r.protocol != RTPROT_KERNEL && r.protocol != RTPROT_RA)
            .collect();
        routes.sort_by_key(|r| r.present.get() & route_present::GATEWAY != 0);
        for r in routes {
            t.sock
                .change(
                    RouteNetlinkMessage::NewRoute(route_msg(r)),
                    NLM_F_CREATE | NLM_F_EXCL,
                )
                .or_else(exists_ok)
                .map_err(|e| {
                    err(
                        t.id,
                        format!(
                            "adding a route to {}/{} in table {}: {e}",
                            crate::image::net::addr_text(r.family, &r.dst),
                            r.dst_len,
                            r.table.get()
                        ),
                    )
                })?;
        }
        restore_rules(&mut t.sock, &it.rules)
            .map_err(|e| err(t.id, format!("policy rules: {e}")))?;
    }
    for t in &targets {
        let it = &all[&t.id];
        log::debug!(
            "restart: net_ns #{}: {} links, {} addresses, {} routes, {} rules, {} ids set",
            t.id,
            it.links.len(),
            it.addrs.len(),
            it.routes.len(),
            it.rules.len(),
            it.nsids.len()
        );
    }
    Ok(guard)
}

fn exists_ok(e: io::Error) -> io::Result<()> {
    if e.raw_os_error() == Some(libc::EEXIST) {
        Ok(())
    } else {
        Err(e)
    }
}

fn link_msg(index: u32, name: &[u8], kind: InfoKind, data: Option<InfoData>) -> LinkMessage {
    let mut m = LinkMessage::default();
    m.header.index = index;
    m.attributes.push(LinkAttribute::IfName(self::name(name)));
    let mut info = vec![LinkInfo::Kind(kind)];
    if let Some(d) = data {
        info.push(LinkInfo::Data(d));
    }
    m.attributes.push(LinkAttribute::LinkInfo(info));
    m
}

fn create_link(
    t: &mut Target<'_>,
    l: &LinkView<'_>,
    all: &HashMap<u32, NsItems<'_>>,
    netns: &HashMap<u32, OwnedFd>,
    external: &[ExternalVeth],
    guard: &mut NetGuard,
) -> io::Result<()> {
    let r = &l.rec;
    let p: [u32; 8] = r.params.map(|v| v.get());
    let idx = r.ifindex.get();
    let create = |sock: &mut Rtnl, m: LinkMessage| {
        sock.change(RouteNetlinkMessage::NewLink(m), NLM_F_CREATE | NLM_F_EXCL)
    };
    match r.kind.get() {
        link_kind::LOOPBACK => Ok(()),
        link_kind::VETH if r.link_flags.get() & link_flags::PEER_OUTSIDE != 0 => {
            let inner = name(l.name);
            let e = external
                .iter()
                .find(|e| e.inner == inner)
                .ok_or_else(|| io::Error::other("no --external names it"))?;
            let mut peer = LinkMessage::default();
            peer.header.index = idx;
            peer.attributes.push(LinkAttribute::IfName(inner.clone()));
            peer.attributes
                .push(LinkAttribute::NetNsFd(t.fd.as_raw_fd()));
            // The outer end gets its old ifindex back when that is free
            // here, any other otherwise (it is not the tree's to keep).
            let m = |index: u32| {
                link_msg(
                    index,
                    e.outer.as_bytes(),
                    InfoKind::Veth,
                    Some(InfoData::Veth(InfoVeth::Peer(peer.clone()))),
                )
            };
            let mut own = Rtnl::open(None)?;
            match create(&mut own, m(r.peer_ifindex.get())) {
                Err(err)
                    if err.raw_os_error() == Some(libc::EBUSY)
                        || err.raw_os_error() == Some(libc::EEXIST) =>
                {
                    create(&mut own, m(0))?
                }
                other => other?,
            }
            guard.outer.push(e.outer.clone());
            let names = link_names(&mut own)?;
            let outer_idx = *names
                .get(&e.outer)
                .ok_or_else(|| io::Error::other(format!("{} vanished", e.outer)))?;
            let mut m = LinkMessage::default();
            m.header.index = outer_idx;
            if let Some(b) = &e.bridge {
                let bi = *names
                    .get(b)
                    .ok_or_else(|| io::Error::other(format!("no bridge {b}")))?;
                m.attributes.push(LinkAttribute::Controller(bi));
            }
            m.header.flags = LinkFlags::Up;
            m.header.change_mask = LinkFlags::Up;
            own.change(RouteNetlinkMessage::SetLink(m), 0)
        }
        link_kind::VETH => {
            let peer_ns = r.peer_ns.id.get();
            let peer_idx = r.peer_ifindex.get();
            // Each pair is made once, from its end that sorts first.
            if (peer_ns, peer_idx) < (t.id, idx) {
                return Ok(());
            }
            let peer_rec = all
                .get(&peer_ns)
                .and_then(|it| it.links.iter().find(|p| p.rec.ifindex.get() == peer_idx))
                .ok_or_else(|| io::Error::other("its peer is not in the image"))?;
            let mut peer = LinkMessage::default();
            peer.header.index = peer_idx;
            peer.attributes
                .push(LinkAttribute::IfName(name(peer_rec.name)));
            if peer_ns != t.id {
                let fd = netns
                    .get(&peer_ns)
                    .ok_or_else(|| io::Error::other("its peer's namespace was not made"))?;
                peer.attributes.push(LinkAttribute::NetNsFd(fd.as_raw_fd()));
            }
            create(
                &mut t.sock,
                link_msg(
                    idx,
                    l.name,
                    InfoKind::Veth,
                    Some(InfoData::Veth(InfoVeth::Peer(peer))),
                ),
            )
        }
        link_kind::BRIDGE => {
            let mut d = vec![
                InfoBridge::StpState(p[0].into()),
                InfoBridge::ForwardDelay(p[1]),
                InfoBridge::HelloTime(p[2]),
                InfoBridge::MaxAge(p[3]),
                InfoBridge::AgeingTime(p[4]),
                InfoBridge::Priority(p[5] as u16),
            ];
            // Only when set: a kernel without VLAN filtering refuses the
            // attribute even to turn it off.
            if p[6] != 0 {
                d.push(InfoBridge::VlanFiltering(true));
            }
            create(
                &mut t.sock,
                link_msg(idx, l.name, InfoKind::Bridge, Some(InfoData::Bridge(d))),
            )
        }
        link_kind::MACVLAN => {
            let d = vec![
                InfoMacVlan::Mode(p[0].into()),
                InfoMacVlan::Flags(MacVlanFlags::from_bits_retain(p[1] as u16)),
            ];
            let mut m = link_msg(idx, l.name, InfoKind::MacVlan, Some(InfoData::MacVlan(d)));
            m.attributes.push(LinkAttribute::Link(r.link.get()));
            create(&mut t.sock, m)
        }
        link_kind::VXLAN => {
            let mut d = vec![
                InfoVxlan::Id(p[0]),
                InfoVxlan::Port(p[1] as u16),
                InfoVxlan::Ttl(p[2] as u8),
                InfoVxlan::Learning(p[3] != 0),
                InfoVxlan::Tos(p[4] as u8),
            ];
            if r.link.get() != 0 {
                d.push(InfoVxlan::Link(r.link.get()));
            }
            let fam = r.addr_family.get() as u8;
            let zero = [0u8; 16];
            if fam == libc::AF_INET as u8 {
                let v4 = |b: &[u8; 16]| std::net::Ipv4Addr::new(b[0], b[1], b[2], b[3]);
                if r.addrs[0][..4] != zero[..4] {
                    d.push(InfoVxlan::Group(v4(&r.addrs[0])));
                }
                if r.addrs[1][..4] != zero[..4] {
                    d.push(InfoVxlan::Local(v4(&r.addrs[1])));
                }
            } else if fam == libc::AF_INET6 as u8 {
                if r.addrs[0] != zero {
                    d.push(InfoVxlan::Group6(r.addrs[0].into()));
                }
                if r.addrs[1] != zero {
                    d.push(InfoVxlan::Local6(r.addrs[1].into()));
                }
            }
            create(
                &mut t.sock,
                link_msg(idx, l.name, InfoKind::Vxlan, Some(InfoData::Vxlan(d))),
            )
        }
        link_kind::TUN => {
            let mut flags = p[0] as u16 & 0x3;
            if p[3] == 0 {
                flags |= 0x1000; // IFF_NO_PI
            }
            if p[4] != 0 {
                flags |= 0x4000; // IFF_VNET_HDR
            }
            if p[5] != 0 {
                flags |= 0x0100; // IFF_MULTI_QUEUE
            }
            let owner = (p[1] != u32::MAX).then_some(p[1]);
            let group = (p[2] != u32::MAX).then_some(p[2]);
            let nm = l.name.to_vec();
            in_netns(Some(t.fd.as_fd()), || {
                crate::sys::tun::create_persistent(&nm, idx, flags, owner, group)
            })
        }
        link_kind::DUMMY => create(&mut t.sock, link_msg(idx, l.name, InfoKind::Dummy, None)),
        link_kind::VLAN => {
            let d = vec![
                InfoVlan::Id(p[0] as u16),
                InfoVlan::Protocol((p[1] as u16).into()),
            ];
            let mut m = link_msg(idx, l.name, InfoKind::Vlan, Some(InfoData::Vlan(d)));
            m.attributes.push(LinkAttribute::Link(r.link.get()));
            create(&mut t.sock, m)
        }
        _ => Err(io::Error::other("unknown kind")),
    }
}

/// The attributes of a bridge port from [`NetLinkRecord::port`].
fn bridge_port(p: &[zerocopy::little_endian::U32; 4]) -> Vec<InfoBridgePort> {
    use crate::image::net::port_flags as f;
    let on = |bit: u32| p[2].get() & bit != 0;
    vec![
        InfoBridgePort::Cost(p[0].get()),
        InfoBridgePort::Priority(p[1].get() as u16),
        InfoBridgePort::Learning(on(f::LEARNING)),
        InfoBridgePort::UnicastFlood(on(f::UNICAST_FLOOD)),
        InfoBridgePort::HairpinMode(on(f::HAIRPIN)),
        InfoBridgePort::Guard(on(f::GUARD)),
        InfoBridgePort::Protect(on(f::ROOT_BLOCK)),
        InfoBridgePort::FastLeave(on(f::FAST_LEAVE)),
        InfoBridgePort::Isolated(on(f::ISOLATED)),
        InfoBridgePort::BroadcastFlood(on(f::BROADCAST_FLOOD)),
        InfoBridgePort::MulticastFlood(on(f::MULTICAST_FLOOD)),
        InfoBridgePort::ProxyARP(on(f::PROXY_ARP)),
    ]
}

fn addr_msg(a: &AddrView<'_>) -> AddressMessage {
    let r = &a.rec;
    let mut m = AddressMessage::default();
    m.header.family = AddressFamily::from(r.family);
    m.header.prefix_len = r.prefix_len;
    m.header.scope = r.scope.into();
    m.header.index = r.ifindex.get();
    let flags = r.flags.get() & SETTABLE_ADDR_FLAGS;
    m.header.flags = AddressHeaderFlags::from_bits_retain(flags as u8);
    let p = r.present.get();
    if p & addr_present::LOCAL != 0 {
        m.attributes
            .push(AddressAttribute::Local(ipaddr(r.family, &r.local)));
    }
    if p & addr_present::ADDRESS != 0 {
        m.attributes
            .push(AddressAttribute::Address(ipaddr(r.family, &r.address)));
    }
    if p & addr_present::BROADCAST != 0 {
        let b = &r.broadcast;
        m.attributes
            .push(AddressAttribute::Broadcast(std::net::Ipv4Addr::new(
                b[0], b[1], b[2], b[3],
            )));
    }
    if !a.label.is_empty() && r.family == libc::AF_INET as u8 {
        m.attributes.push(AddressAttribute::Label(name(a.label)));
    }
    m.attributes
        .push(AddressAttribute::Flags(AddressFlags::from_bits_retain(
            flags,
        )));
    if r.valid.get() != u32::MAX || r.preferred.get() != u32::MAX {
        let mut c = CacheInfo::default();
        c.ifa_preferred = r.preferred.get();
        c.ifa_valid = r.valid.get();
        m.attributes.push(AddressAttribute::CacheInfo(c));
    }
    m
}

fn route_msg(r: &NetRouteRecord) -> RouteMessage {
    let mut m = RouteMessage::default();
    let h = &mut m.header;
    h.address_family = AddressFamily::from(r.family);
    h.destination_prefix_length = r.dst_len;
    h.source_prefix_length = r.src_len;
    h.tos = r.tos;
    h.table = if r.table.get() < 256 {
        r.table.get() as u8
    } else {
        0
    };
    h.protocol = r.protocol.into();
    h.scope = r.scope.into();
    h.kind = r.rtype.into();
    // Only RTNH_F_ONLINK is a request; the others are state.
    h.flags = RouteFlags::from_bits_retain(r.flags.get() & 4);
    let p = r.present.get();
    let f = r.family;
    if p & route_present::DST != 0 {
        m.attributes
            .push(RouteAttribute::Destination(route_addr(f, &r.dst)));
    }
    if p & route_present::SRC != 0 {
        m.attributes
            .push(RouteAttribute::Source(route_addr(f, &r.src)));
    }
    if p & route_present::GATEWAY != 0 {
        m.attributes
            .push(RouteAttribute::Gateway(route_addr(f, &r.gateway)));
    }
    if p & route_present::PREFSRC != 0 {
        m.attributes
            .push(RouteAttribute::PrefSource(route_addr(f, &r.prefsrc)));
    }
    if p & route_present::OIF != 0 {
        m.attributes.push(RouteAttribute::Oif(r.oif.get()));
    }
    if p & route_present::PRIORITY != 0 {
        m.attributes
            .push(RouteAttribute::Priority(r.priority.get()));
    }
    m.attributes.push(RouteAttribute::Table(r.table.get()));
    m
}

/// The namespace's rules become exactly the image's: the defaults a new
/// namespace has are deleted first, then every rule is added in order.
fn restore_rules(sock: &mut Rtnl, rules: &[RuleView<'_>]) -> io::Result<()> {
    let mut live = Vec::new();
    for family in [AddressFamily::Inet, AddressFamily::Inet6] {
        let mut q = RuleMessage::default();
        q.header.family = family;
        for m in sock.dump(RouteNetlinkMessage::GetRule(q))? {
            if let RouteNetlinkMessage::NewRule(r) = m {
                live.push(r);
            }
        }
    }
    // The new namespace's rules are often the image's already (a workload
    // that never changed them): then nothing is deleted and made again.
    let key = |rec: &crate::image::net::NetRuleRecord| crate::image::net::NetRuleRecord {
        netns: Default::default(),
        iif_len: Default::default(),
        oif_len: Default::default(),
        ..*rec
    };
    let same = live.len() == rules.len()
        && live.iter().zip(rules).all(|(r, q)| {
            let r = super::net::rule_of(r);
            key(&r.rec) == key(&q.rec) && r.iif == q.iif && r.oif == q.oif
        });
    if same {
        log::debug!("restart: policy rules as the new namespace has them");
        return Ok(());
    }
    for r in live {
        sock.change(RouteNetlinkMessage::DelRule(r), 0)?;
    }
    for q in rules {
        let r = &q.rec;
        let mut m = RuleMessage::default();
        m.header.family = AddressFamily::from(r.family);
        m.header.dst_len = r.dst_len;
        m.header.src_len = r.src_len;
        m.header.tos = r.tos;
        m.header.action = r.action.into();
        m.header.table = if r.table.get() < 256 {
            r.table.get() as u8
        } else {
            0
        };
        // FIB_RULE_INVERT is the one flag a user sets.
        m.header.flags = RuleFlags::from_bits_retain(r.flags.get() & 0x2);
        let p = r.present.get();
        m.attributes.push(RuleAttribute::Table(r.table.get()));
        if p & rule_present::PRIORITY != 0 {
            m.attributes.push(RuleAttribute::Priority(r.priority.get()));
        }
        if p & rule_present::FWMARK != 0 {
            m.attributes.push(RuleAttribute::FwMark(r.fwmark.get()));
        }
        if p & rule_present::FWMASK != 0 {
            m.attributes.push(RuleAttribute::FwMask(r.fwmask.get()));
        }
        if p & rule_present::SRC != 0 {
            m.attributes
                .push(RuleAttribute::Source(ipaddr(r.family, &r.src)));
        }
        if p & rule_present::DST != 0 {
            m.attributes
                .push(RuleAttribute::Destination(ipaddr(r.family, &r.dst)));
        }
        if !q.iif.is_empty() {
            m.attributes.push(RuleAttribute::Iifname(name(q.iif)));
        }
        if !q.oif.is_empty() {
            m.attributes.push(RuleAttribute::Oifname(name(q.oif)));
        }
        sock.change(RouteNetlinkMessage::NewRule(m), NLM_F_CREATE | NLM_F_EXCL)
            .or_else(exists_ok)?;
    }
    Ok(())
}

/// Writes each sysctl whose value differs from the new namespace's (run in
/// a thread inside it). Names were checked by the reader to stay below
/// /proc/sys/net.
fn write_sysctls(sysctls: &[&SysctlView<'_>]) -> io::Result<()> {
    let mut files = super::rtnl::SysctlFiles::default();
    for s in sysctls {
        let path = || format!("/proc/sys/net/{}", name(s.name));
        let now = files
            .read(s.name)
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path())))?;
        if now == s.value {
            continue;
        }
        files
            .write(s.name, s.value)
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path())))?;
        log::debug!("restart: sysctl net/{} = {}", name(s.name), name(s.value));
    }
    Ok(())
}
