//! The contents of the tree's own network namespaces: links, addresses,
//! routes, policy rules, netns ids and sysctls (collect, dump, describe).
//!
//! Everything is read over rtnetlink from a socket made inside each
//! namespace ([`super::rtnl`]), except the sysctls, read from /proc/sys/net
//! by a thread that entered the namespace (and, once, in a brand-new
//! namespace a thread of kstate's unshares, to flag the sysctls a restart
//! may leave alone: [`as_new`]). Collection runs twice, at the
//! start and at the end of the checkpoint: the tree is frozen, but a process
//! outside it may still change a namespace the tree uses, and a difference
//! fails the checkpoint rather than write an inconsistent image.

use std::collections::HashMap;
use std::io;
use std::os::fd::{AsFd, AsRawFd};

use netlink_packet_core::Nla;
use netlink_packet_route::address::{AddressAttribute, AddressMessage};
use netlink_packet_route::link::{
    InfoBridge, InfoBridgePort, InfoData, InfoKind, InfoMacVlan, InfoPortData, InfoTun, InfoVlan,
    InfoVxlan, LinkAttribute, LinkInfo, LinkMessage,
};
use netlink_packet_route::nsid::{NsidAttribute, NsidMessage};
use netlink_packet_route::route::{RouteAddress, RouteAttribute, RouteMessage};
use netlink_packet_route::rule::{RuleAttribute, RuleMessage};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use serde_json::{json, Map, Value};
use zerocopy::little_endian::{I32, U32};

use super::rtnl::{in_netns, Rtnl};
use super::ObjectError;
use crate::image::format::Ref;
use crate::image::net::{
    addr_present, addr_text, link_flags, link_kind, route_present, rule_present, sysctl_flags,
    NetAddrRecord, NetLinkRecord, NetNsidRecord, NetRouteRecord, NetRuleRecord, NetSysctlRecord,
    NetView,
};
use crate::image::{ImageWriter, Kind};
use crate::kstate::registry::{NsKind, Registry};

/// A link as collected; `peer_ns` is a registry index.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Link {
    pub rec: NetLinkRecord,
    pub peer_ns: Option<usize>,
    pub name: Vec<u8>,
    pub alias: Vec<u8>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Addr {
    pub rec: NetAddrRecord,
    pub label: Vec<u8>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    pub rec: NetRuleRecord,
    pub iif: Vec<u8>,
    pub oif: Vec<u8>,
}

/// Everything kstate keeps of one network namespace of the tree.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NetContents {
    /// Registry index of the namespace.
    pub ns: usize,
    pub links: Vec<Link>,
    pub addrs: Vec<Addr>,
    pub routes: Vec<NetRouteRecord>,
    pub rules: Vec<Rule>,
    /// (registry index of the other namespace, the id this one gives it).
    pub nsids: Vec<(usize, i32)>,
    /// (path below /proc/sys/net, value).
    pub sysctls: Sysctls,
    /// One per entry of `sysctls`: its value is what a brand-new network
    /// namespace starts with ([`as_new`]); empty when that is not known.
    pub sysctl_as_new: Vec<bool>,
}

fn net_err(reg: &Registry, ns: usize, what: String) -> ObjectError {
    ObjectError::Net {
        ns: format!("net:[{}]", reg.namespaces[ns].key.ino),
        what,
    }
}

fn ip16(a: std::net::IpAddr) -> [u8; 16] {
    let mut out = [0u8; 16];
    match a {
        std::net::IpAddr::V4(v) => out[..4].copy_from_slice(&v.octets()),
        std::net::IpAddr::V6(v) => out = v.octets(),
    }
    out
}

fn route_ip(a: &RouteAddress) -> Option<[u8; 16]> {
    match a {
        RouteAddress::Inet(v) => Some(ip16((*v).into())),
        RouteAddress::Inet6(v) => Some(ip16((*v).into())),
        _ => None,
    }
}

/// The ids `sock`'s namespace gives every namespace of the registry.
fn nsids_of(sock: &mut Rtnl, reg: &Registry, me: usize) -> io::Result<Vec<(usize, i32)>> {
    let mut out = Vec::new();
    for (i, n) in reg.namespaces.iter().enumerate() {
        if n.key.kind != NsKind::Net || i == me {
            continue;
        }
        let mut m = NsidMessage::default();
        m.attributes
            .push(NsidAttribute::Fd(n.fd.as_raw_fd() as u32));
        for reply in sock.get(RouteNetlinkMessage::GetNsId(m))? {
            if let RouteNetlinkMessage::NewNsId(r) = reply {
                for a in r.attributes {
                    if let NsidAttribute::Id(id) = a {
                        if id >= 0 {
                            out.push((i, id));
                        }
                    }
                }
            }
        }
    }
    Ok(out)
}

/// Reads one namespace's links, addresses, routes, rules and ids (not its
/// sysctls). Refuses a link of a kind kstate cannot make again.
fn read_state(reg: &Registry, ns: usize) -> Result<NetContents, ObjectError> {
    let nerr = |what: &str, e: io::Error| net_err(reg, ns, format!("{what}: {e}"));
    let mut sock =
        Rtnl::open(Some(reg.namespaces[ns].fd.as_fd())).map_err(|e| nerr("rtnetlink socket", e))?;
    // Links first: listing a veth whose peer is in another namespace makes
    // the kernel give that namespace an id, which is then read below.
    let links = sock
        .dump(RouteNetlinkMessage::GetLink(LinkMessage::default()))
        .map_err(|e| nerr("listing links", e))?;
    let nsids = nsids_of(&mut sock, reg, ns).map_err(|e| nerr("reading netns ids", e))?;
    let by_id: HashMap<i32, usize> = nsids.iter().map(|(i, id)| (*id, *i)).collect();
    let mut out = NetContents {
        ns,
        nsids,
        ..NetContents::default()
    };
    for m in links {
        if let RouteNetlinkMessage::NewLink(l) = m {
            let link = link_of(reg, ns, &l, &by_id)?;
            log::debug!(
                "net:[{}]: link {} {} ({})",
                reg.namespaces[ns].key.ino,
                link.rec.ifindex.get(),
                String::from_utf8_lossy(&link.name),
                link_kind::name(link.rec.kind.get())
            );
            out.links.push(link);
        }
    }
    out.links.sort_by_key(|l| l.rec.ifindex.get());
    let mut am = AddressMessage::default();
    am.header.family = AddressFamily::Unspec;
    for m in sock
        .dump(RouteNetlinkMessage::GetAddress(am))
        .map_err(|e| nerr("listing addresses", e))?
    {
        if let RouteNetlinkMessage::NewAddress(a) = m {
            out.addrs.push(addr_of(&a));
        }
    }
    for family in [AddressFamily::Inet, AddressFamily::Inet6] {
        let mut rm = RouteMessage::default();
        rm.header.address_family = family;
        for m in sock
            .dump(RouteNetlinkMessage::GetRoute(rm))
            .map_err(|e| nerr("listing routes", e))?
        {
            if let RouteNetlinkMessage::NewRoute(r) = m {
                if let Some(r) = route_of(reg, ns, &r)? {
                    out.routes.push(r);
                }
            }
        }
        let mut qm = RuleMessage::default();
        qm.header.family = family;
        for m in sock
            .dump(RouteNetlinkMessage::GetRule(qm))
            .map_err(|e| nerr("listing rules", e))?
        {
            if let RouteNetlinkMessage::NewRule(r) = m {
                out.rules.push(rule_of(&r));
            }
        }
    }
    // Routes the kernel makes as links come up (fe80::/64, local and
    // multicast ones) list in the order the devices came up, which a
    // restart cannot repeat: keep them in a canonical order instead.
    out.routes.sort_by(|a, b| {
        use zerocopy::IntoBytes;
        let key = |r: &NetRouteRecord| {
            (
                r.family,
                r.table.get(),
                r.dst,
                r.dst_len,
                r.oif.get(),
                r.priority.get(),
            )
        };
        key(a).cmp(&key(b)).then(a.as_bytes().cmp(b.as_bytes()))
    });
    Ok(out)
}

fn link_of(
    reg: &Registry,
    ns: usize,
    l: &LinkMessage,
    by_id: &HashMap<i32, usize>,
) -> Result<Link, ObjectError> {
    let mut rec = NetLinkRecord {
        ifindex: U32::new(l.header.index),
        flags: U32::new(l.header.flags.bits()),
        ..Default::default()
    };
    let mut name = Vec::new();
    let mut alias = Vec::new();
    let mut kind: Option<InfoKind> = None;
    let mut data: Option<&InfoData> = None;
    let mut link_netnsid: Option<i32> = None;
    let mut link = 0u32;
    for a in &l.attributes {
        match a {
            LinkAttribute::IfName(n) => name = n.as_bytes().to_vec(),
            LinkAttribute::IfAlias(n) => alias = n.as_bytes().to_vec(),
            LinkAttribute::Mtu(v) => rec.mtu = U32::new(*v),
            LinkAttribute::TxQueueLen(v) => rec.txqlen = U32::new(*v),
            LinkAttribute::Controller(v) => rec.master = U32::new(*v),
            LinkAttribute::Link(v) => link = *v,
            LinkAttribute::LinkNetNsId(v) => link_netnsid = Some(*v),
            LinkAttribute::Address(b) => {
                let n = b.len().min(32);
                rec.hwaddr[..n].copy_from_slice(&b[..n]);
                rec.hwaddr_len = U32::new(n as u32);
            }
            LinkAttribute::LinkInfo(infos) => {
                for i in infos {
                    match i {
                        LinkInfo::Kind(k) => kind = Some(k.clone()),
                        LinkInfo::Data(d) => data = Some(d),
                        LinkInfo::PortData(InfoPortData::BridgePort(v)) => {
                            rec.port = bridge_port(v).map(U32::new)
                        }
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    let shown = String::from_utf8_lossy(&name).into_owned();
    let refuse = |what: String| net_err(reg, ns, format!("device {shown}: {what}"));
    let mut p = [0u32; 8];
    let mut peer_ns = None;
    let k = match &kind {
        None if l.header.link_layer_type == netlink_packet_route::link::LinkLayerType::Loopback => {
            link_kind::LOOPBACK
        }
        None => {
            return Err(refuse(
                "has no kind kstate knows (not a virtual device?)".into(),
            ))
        }
        Some(InfoKind::Veth) => {
            rec.peer_ifindex = U32::new(link);
            match link_netnsid {
                None => peer_ns = Some(ns),
                Some(id) => match by_id.get(&id) {
                    Some(&peer) if !reg.namespaces[peer].external => peer_ns = Some(peer),
                    _ => rec.link_flags = U32::new(link_flags::PEER_OUTSIDE),
                },
            }
            link_kind::VETH
        }
        Some(InfoKind::Bridge) => {
            if let Some(InfoData::Bridge(v)) = data {
                for a in v {
                    match a {
                        InfoBridge::StpState(s) => p[0] = u32::from(*s),
                        InfoBridge::ForwardDelay(x) => p[1] = *x,
                        InfoBridge::HelloTime(x) => p[2] = *x,
                        InfoBridge::MaxAge(x) => p[3] = *x,
                        InfoBridge::AgeingTime(x) => p[4] = *x,
                        InfoBridge::Priority(x) => p[5] = *x as u32,
                        InfoBridge::VlanFiltering(x) => p[6] = *x as u32,
                        _ => {}
                    }
                }
            }
            link_kind::BRIDGE
        }
        Some(InfoKind::MacVlan) => {
            if link_netnsid.is_some() {
                return Err(refuse(
                    "a macvlan over a device of another namespace is not supported".into(),
                ));
            }
            rec.link = U32::new(link);
            if let Some(InfoData::MacVlan(v)) = data {
                for a in v {
                    match a {
                        InfoMacVlan::Mode(m) => p[0] = u32::from(*m),
                        InfoMacVlan::Flags(f) => p[1] = f.bits() as u32,
                        _ => {}
                    }
                }
            }
            link_kind::MACVLAN
        }
        Some(InfoKind::Vxlan) => {
            if let Some(InfoData::Vxlan(v)) = data {
                for a in v {
                    match a {
                        InfoVxlan::Id(x) => p[0] = *x,
                        InfoVxlan::Port(x) => p[1] = *x as u32,
                        InfoVxlan::Ttl(x) => p[2] = *x as u32,
                        InfoVxlan::Learning(x) => p[3] = *x as u32,
                        InfoVxlan::Tos(x) => p[4] = *x as u32,
                        InfoVxlan::Link(x) => rec.link = U32::new(*x),
                        InfoVxlan::Group(a) => {
                            rec.addrs[0] = ip16((*a).into());
                            rec.addr_family = U32::new(libc::AF_INET as u32);
                        }
                        InfoVxlan::Group6(a) => {
                            rec.addrs[0] = ip16((*a).into());
                            rec.addr_family = U32::new(libc::AF_INET6 as u32);
                        }
                        InfoVxlan::Local(a) => {
                            rec.addrs[1] = ip16((*a).into());
                            rec.addr_family = U32::new(libc::AF_INET as u32);
                        }
                        InfoVxlan::Local6(a) => {
                            rec.addrs[1] = ip16((*a).into());
                            rec.addr_family = U32::new(libc::AF_INET6 as u32);
                        }
                        _ => {}
                    }
                }
            }
            link_kind::VXLAN
        }
        Some(InfoKind::Tun) => {
            p[1] = u32::MAX;
            p[2] = u32::MAX;
            if let Some(InfoData::Tun(v)) = data {
                for a in v {
                    let InfoTun::Other(nla) = a else { continue };
                    let mut val = vec![0u8; nla.value_len()];
                    nla.emit_value(&mut val);
                    let u8v = val.first().copied().unwrap_or(0) as u32;
                    let u32v = val
                        .get(..4)
                        .map(|b| u32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
                        .unwrap_or(0);
                    match nla.kind() {
                        1 => p[1] = u32v,
                        2 => p[2] = u32v,
                        3 => p[0] = u8v,
                        4 => p[3] = u8v,
                        5 => p[4] = u8v,
                        6 => p[6] = u8v,
                        7 => p[5] = u8v,
                        _ => {}
                    }
                }
            }
            if p[6] == 0 {
                return Err(refuse(
                    "a tun/tap device that is not persistent belongs to an open file: not supported"
                        .into(),
                ));
            }
            link_kind::TUN
        }
        Some(InfoKind::Dummy) => link_kind::DUMMY,
        Some(InfoKind::Vlan) => {
            if link_netnsid.is_some() {
                return Err(refuse(
                    "a vlan over a device of another namespace is not supported".into(),
                ));
            }
            rec.link = U32::new(link);
            if let Some(InfoData::Vlan(v)) = data {
                for a in v {
                    match a {
                        InfoVlan::Id(x) => p[0] = *x as u32,
                        InfoVlan::Protocol(x) => p[1] = u16::from(*x) as u32,
                        _ => {}
                    }
                }
            }
            link_kind::VLAN
        }
        Some(other) => {
            return Err(refuse(format!(
                "kind {}: kstate cannot checkpoint this kind of device",
                kind_name(other)
            )))
        }
    };
    Ok(Link {
        rec: finish(rec, k, p),
        peer_ns,
        name,
        alias,
    })
}

/// A bridge port's cost, priority and switches ([`port_flags`]).
fn bridge_port(v: &[InfoBridgePort]) -> [u32; 4] {
    use crate::image::net::port_flags as f;
    let mut out = [0u32; 4];
    for a in v {
        let (bit, on) = match a {
            InfoBridgePort::Cost(c) => {
                out[0] = *c;
                continue;
            }
            InfoBridgePort::Priority(p) => {
                out[1] = *p as u32;
                continue;
            }
            InfoBridgePort::Learning(b) => (f::LEARNING, *b),
            InfoBridgePort::UnicastFlood(b) => (f::UNICAST_FLOOD, *b),
            InfoBridgePort::HairpinMode(b) => (f::HAIRPIN, *b),
            InfoBridgePort::Guard(b) => (f::GUARD, *b),
            InfoBridgePort::Protect(b) => (f::ROOT_BLOCK, *b),
            InfoBridgePort::FastLeave(b) => (f::FAST_LEAVE, *b),
            InfoBridgePort::Isolated(b) => (f::ISOLATED, *b),
            InfoBridgePort::BroadcastFlood(b) => (f::BROADCAST_FLOOD, *b),
            InfoBridgePort::MulticastFlood(b) => (f::MULTICAST_FLOOD, *b),
            InfoBridgePort::ProxyARP(b) => (f::PROXY_ARP, *b),
            _ => continue,
        };
        if on {
            out[2] |= bit;
        }
    }
    out
}

fn kind_name(k: &InfoKind) -> String {
    match k {
        InfoKind::Other(s) => s.clone(),
        k => format!("{k:?}").to_lowercase(),
    }
}

fn finish(mut rec: NetLinkRecord, kind: u32, p: [u32; 8]) -> NetLinkRecord {
    rec.kind = U32::new(kind);
    rec.params = p.map(U32::new);
    rec
}

fn addr_of(a: &AddressMessage) -> Addr {
    let family = u8::from(a.header.family);
    let mut rec = NetAddrRecord {
        ifindex: U32::new(a.header.index),
        family,
        prefix_len: a.header.prefix_len,
        scope: u8::from(a.header.scope),
        flags: U32::new(a.header.flags.bits() as u32),
        valid: U32::new(u32::MAX),
        preferred: U32::new(u32::MAX),
        ..Default::default()
    };
    let mut present = 0;
    let mut label = Vec::new();
    for at in &a.attributes {
        match at {
            AddressAttribute::Local(ip) => {
                rec.local = ip16(*ip);
                present |= addr_present::LOCAL;
            }
            AddressAttribute::Address(ip) => {
                rec.address = ip16(*ip);
                present |= addr_present::ADDRESS;
            }
            AddressAttribute::Broadcast(ip) => {
                rec.broadcast = ip16((*ip).into());
                present |= addr_present::BROADCAST;
            }
            AddressAttribute::Label(l) => label = l.as_bytes().to_vec(),
            AddressAttribute::Flags(f) => rec.flags = U32::new(f.bits()),
            AddressAttribute::Protocol(p) => rec.proto = u8::from(*p),
            AddressAttribute::CacheInfo(c) => {
                rec.valid = U32::new(c.ifa_valid);
                rec.preferred = U32::new(c.ifa_preferred);
            }
            _ => {}
        }
    }
    rec.present = U32::new(present);
    Addr { rec, label }
}

fn route_of(
    reg: &Registry,
    ns: usize,
    r: &RouteMessage,
) -> Result<Option<NetRouteRecord>, ObjectError> {
    let h = &r.header;
    let mut rec = NetRouteRecord {
        family: u8::from(h.address_family),
        dst_len: h.destination_prefix_length,
        src_len: h.source_prefix_length,
        tos: h.tos,
        protocol: u8::from(h.protocol),
        scope: u8::from(h.scope),
        rtype: u8::from(h.kind),
        table: U32::new(h.table as u32),
        flags: U32::new(h.flags.bits()),
        ..Default::default()
    };
    if rec.family != libc::AF_INET as u8 && rec.family != libc::AF_INET6 as u8 {
        return Ok(None);
    }
    let mut present = 0;
    for a in &r.attributes {
        match a {
            RouteAttribute::Destination(d) => {
                if let Some(b) = route_ip(d) {
                    rec.dst = b;
                    present |= route_present::DST;
                }
            }
            RouteAttribute::Source(d) => {
                if let Some(b) = route_ip(d) {
                    rec.src = b;
                    present |= route_present::SRC;
                }
            }
            RouteAttribute::Gateway(d) => {
                if let Some(b) = route_ip(d) {
                    rec.gateway = b;
                    present |= route_present::GATEWAY;
                }
            }
            RouteAttribute::PrefSource(d) => {
                if let Some(b) = route_ip(d) {
                    rec.prefsrc = b;
                    present |= route_present::PREFSRC;
                }
            }
            RouteAttribute::Oif(i) => {
                rec.oif = U32::new(*i);
                present |= route_present::OIF;
            }
            RouteAttribute::Priority(p) => {
                rec.priority = U32::new(*p);
                present |= route_present::PRIORITY;
            }
            RouteAttribute::Table(t) => rec.table = U32::new(*t),
            RouteAttribute::MultiPath(_) => {
                return Err(net_err(
                    reg,
                    ns,
                    "a multipath route: kstate cannot checkpoint it".into(),
                ))
            }
            _ => {}
        }
    }
    rec.present = U32::new(present);
    Ok(Some(rec))
}

pub(crate) fn rule_of(r: &RuleMessage) -> Rule {
    let h = &r.header;
    let mut rec = NetRuleRecord {
        family: u8::from(h.family),
        dst_len: h.dst_len,
        src_len: h.src_len,
        tos: h.tos,
        action: u8::from(h.action),
        table: U32::new(h.table as u32),
        flags: U32::new(h.flags.bits()),
        ..Default::default()
    };
    let (mut iif, mut oif) = (Vec::new(), Vec::new());
    let mut present = 0;
    for a in &r.attributes {
        match a {
            RuleAttribute::Priority(p) => {
                rec.priority = U32::new(*p);
                present |= rule_present::PRIORITY;
            }
            RuleAttribute::FwMark(p) => {
                rec.fwmark = U32::new(*p);
                present |= rule_present::FWMARK;
            }
            RuleAttribute::FwMask(p) => {
                rec.fwmask = U32::new(*p);
                present |= rule_present::FWMASK;
            }
            RuleAttribute::Table(t) => rec.table = U32::new(*t),
            RuleAttribute::Source(ip) => {
                rec.src = ip16(*ip);
                present |= rule_present::SRC;
            }
            RuleAttribute::Destination(ip) => {
                rec.dst = ip16(*ip);
                present |= rule_present::DST;
            }
            RuleAttribute::Iifname(n) => iif = n.as_bytes().to_vec(),
            RuleAttribute::Oifname(n) => oif = n.as_bytes().to_vec(),
            _ => {}
        }
    }
    rec.present = U32::new(present);
    Rule { rec, iif, oif }
}

/// The sysctls kept: every writable file of ipv4/conf/* and ipv6/conf/*,
/// and ipv4/ip_forward, ipv4/ping_group_range, unix/max_dgram_qlen.
fn read_sysctls() -> io::Result<Sysctls> {
    use std::os::unix::ffi::OsStrExt;
    let base = std::path::Path::new("/proc/sys/net");
    let mut files = super::rtnl::SysctlFiles::default();
    let mut names: Vec<Vec<u8>> = vec![
        b"ipv4/ip_forward".to_vec(),
        b"ipv4/ping_group_range".to_vec(),
        b"unix/max_dgram_qlen".to_vec(),
    ];
    for fam in ["ipv4", "ipv6"] {
        let conf = base.join(fam).join("conf");
        let Ok(dirs) = std::fs::read_dir(&conf) else {
            continue;
        };
        let mut dirs: Vec<_> = dirs.filter_map(|d| d.ok()).map(|d| d.file_name()).collect();
        // all, then default, then the devices: the order a restart writes
        // them in (all and default spread to the devices).
        dirs.sort_by_key(|d| (d != "all", d != "default", d.clone()));
        for d in dirs {
            let Ok(entries) = std::fs::read_dir(conf.join(&d)) else {
                continue;
            };
            let mut entries: Vec<_> = entries
                .filter_map(|f| f.ok())
                .map(|f| f.file_name())
                .collect();
            entries.sort();
            for f in entries {
                let mut n = format!("{fam}/conf/").into_bytes();
                n.extend_from_slice(d.as_bytes());
                n.push(b'/');
                n.extend_from_slice(f.as_bytes());
                names.push(n);
            }
        }
    }
    let mut out = Vec::new();
    for n in names {
        // Read-only files (mc_forwarding) are not kept; some cannot be
        // read at all (stable_secret before it is set).
        if let Ok(Some(v)) = files.read_writable(&n) {
            out.push((n, v));
        }
    }
    Ok(out)
}

/// A namespace's sysctls: (path below /proc/sys/net, value).
pub type Sysctls = Vec<(Vec<u8>, Vec<u8>)>;

/// The sysctls of a brand-new network namespace ([`super::rtnl::new_netns`]),
/// which goes away once read.
fn read_new_netns_sysctls() -> io::Result<Sysctls> {
    let ns = super::rtnl::new_netns()?;
    in_netns(Some(ns.as_fd()), read_sysctls)
}

/// The sysctls of the network namespaces `which` (indices into the
/// registry's namespaces), read side by side: a thread per namespace, a few
/// at a time (each enters its namespace; hundreds of small files each).
/// With `fresh`, another thread reads those of a brand-new namespace
/// meanwhile ([`read_new_netns_sysctls`]), returned second.
fn sysctls_of(
    reg: &Registry,
    which: &[usize],
    fresh: bool,
) -> Result<(Vec<Sysctls>, Option<io::Result<Sysctls>>), ObjectError> {
    const AT_ONCE: usize = 4;
    let joined = |h: std::thread::ScopedJoinHandle<'_, io::Result<Sysctls>>| {
        h.join()
            .unwrap_or_else(|_| Err(io::Error::other("sysctl reader thread panicked")))
    };
    std::thread::scope(|outer| {
        let new_ns = fresh.then(|| outer.spawn(read_new_netns_sysctls));
        let mut out = Vec::with_capacity(which.len());
        for chunk in which.chunks(AT_ONCE) {
            let got: Vec<io::Result<Sysctls>> = std::thread::scope(|s| {
                let handles: Vec<_> = chunk
                    .iter()
                    .map(|&i| {
                        let fd = reg.namespaces[i].fd.as_fd();
                        s.spawn(move || in_netns(Some(fd), read_sysctls))
                    })
                    .collect();
                handles.into_iter().map(joined).collect()
            });
            for (&i, r) in chunk.iter().zip(got) {
                out.push(r.map_err(|e| net_err(reg, i, format!("reading sysctls: {e}")))?);
            }
        }
        Ok((out, new_ns.map(joined)))
    })
}

/// Where a recorded sysctl lives, for [`as_new`].
#[derive(Clone, Copy)]
enum Place<'a> {
    /// Not under ipv4/conf or ipv6/conf (ip_forward, unix/max_dgram_qlen, …).
    Global,
    /// `FAMILY/conf/DIR/NAME`.
    Conf {
        family: &'a [u8],
        dir: &'a [u8],
        name: &'a [u8],
    },
}

fn place(n: &[u8]) -> Place<'_> {
    let mut parts = n.splitn(4, |b| *b == b'/');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(family @ (b"ipv4" | b"ipv6")), Some(b"conf"), Some(dir), Some(name)) => {
            Place::Conf { family, dir, name }
        }
        _ => Place::Global,
    }
}

/// For each of a namespace's `sysctls`, whether a restart may leave it as a
/// brand-new namespace has it (`fresh`, read in one kstate made): the name
/// is a global one or in conf/all, conf/default or conf/lo (`lo` being the
/// loopback: `lo_is_loopback`), and its value is the new namespace's. A
/// conf/lo entry needs conf/all and conf/default of the same family and
/// name to qualify too: the kernel spreads writes to those to the devices,
/// so a device's value is only left alone when they are. Other devices'
/// entries never qualify (their defaults are the driver's).
pub fn as_new(
    sysctls: &[(Vec<u8>, Vec<u8>)],
    fresh: &[(Vec<u8>, Vec<u8>)],
    lo_is_loopback: bool,
) -> Vec<bool> {
    let fresh: HashMap<&[u8], &[u8]> = fresh
        .iter()
        .map(|(n, v)| (n.as_slice(), v.as_slice()))
        .collect();
    let same = |n: &[u8], v: &[u8]| fresh.get(n) == Some(&v);
    // Whether each recorded name has the new namespace's value.
    let recorded: HashMap<&[u8], bool> = sysctls
        .iter()
        .map(|(n, v)| (n.as_slice(), same(n, v)))
        .collect();
    let qualifies = |family: &[u8], dir: &str, name: &[u8]| {
        let mut n = family.to_vec();
        n.extend_from_slice(b"/conf/");
        n.extend_from_slice(dir.as_bytes());
        n.push(b'/');
        n.extend_from_slice(name);
        recorded.get(n.as_slice()).copied().unwrap_or(false)
    };
    sysctls
        .iter()
        .map(|(n, v)| {
            same(n, v)
                && match place(n) {
                    Place::Global => true,
                    Place::Conf { dir, .. } if dir == b"all" || dir == b"default" => true,
                    Place::Conf { family, dir, name } if dir == b"lo" => {
                        lo_is_loopback
                            && qualifies(family, "all", name)
                            && qualifies(family, "default", name)
                    }
                    Place::Conf { .. } => false,
                }
        })
        .collect()
}

/// Collects every internal network namespace of the registry.
pub fn collect(reg: &mut Registry) -> Result<(), ObjectError> {
    let mut all = Vec::new();
    let which: Vec<usize> = reg
        .namespaces
        .iter()
        .enumerate()
        .filter(|(_, n)| n.key.kind == NsKind::Net && !n.external)
        .map(|(i, _)| i)
        .collect();
    // A new namespace's sysctls, read beside the tree's: which of the
    // tree's are as a new namespace has them, for the restart to skip.
    let (sysctls, fresh) = sysctls_of(reg, &which, !which.is_empty())?;
    let fresh = match fresh {
        Some(Ok(f)) => Some(f),
        Some(Err(e)) => {
            log::warn!(
                "could not read the sysctls of a new network namespace ({e}): a restart will compare every sysctl"
            );
            None
        }
        None => None,
    };
    let mut sysctls = sysctls.into_iter();
    for (i, n) in reg.namespaces.iter().enumerate() {
        if n.key.kind != NsKind::Net || n.external {
            continue;
        }
        let mut c = read_state(reg, i)?;
        c.sysctls = sysctls.next().unwrap_or_default();
        if let Some(f) = &fresh {
            let lo_is_loopback = c
                .links
                .iter()
                .any(|l| l.rec.kind.get() == link_kind::LOOPBACK && l.name == b"lo");
            c.sysctl_as_new = as_new(&c.sysctls, f, lo_is_loopback);
        }
        log::debug!(
            "collected net:[{}]: {} links, {} addresses, {} routes, {} rules, {} ids, {} sysctls ({} as a new namespace has them)",
            n.key.ino,
            c.links.len(),
            c.addrs.len(),
            c.routes.len(),
            c.rules.len(),
            c.nsids.len(),
            c.sysctls.len(),
            c.sysctl_as_new.iter().filter(|a| **a).count()
        );
        all.push(c);
    }
    reg.net = all;
    Ok(())
}

/// Lifetimes count down while the checkpoint runs: left out of the
/// comparison (sysctls are compared on their own).
fn comparable(c: &NetContents) -> NetContents {
    let mut c = c.clone();
    c.sysctls.clear();
    c.sysctl_as_new.clear();
    for a in &mut c.addrs {
        a.rec.valid = U32::ZERO;
        a.rec.preferred = U32::ZERO;
    }
    c
}

/// Reads every namespace again and fails if anything changed since
/// [`collect`] (the consistency digest of the checkpoint).
pub fn verify(reg: &Registry) -> Result<(), ObjectError> {
    let which: Vec<usize> = reg.net.iter().map(|c| c.ns).collect();
    let (all_now, _) = sysctls_of(reg, &which, false)?;
    for (c, sysctls_now) in reg.net.iter().zip(all_now) {
        let now = read_state(reg, c.ns)?;
        let (a, b) = (comparable(c), comparable(&now));
        let what = if a.links != b.links {
            Some("its links")
        } else if a.addrs != b.addrs {
            Some("its addresses")
        } else if a.routes != b.routes {
            Some("its routes")
        } else if a.rules != b.rules {
            Some("its policy rules")
        } else if a.nsids != b.nsids {
            Some("its netns ids")
        } else if c.sysctls != sysctls_now {
            Some("its sysctls")
        } else {
            None
        };
        if let Some(what) = what {
            return Err(net_err(
                reg,
                c.ns,
                format!(
                    "{what} changed while the checkpoint was taken (a process outside the tree changed the namespace); the image would not be consistent"
                ),
            ));
        }
    }
    Ok(())
}

/// Writes the records of every collected namespace (after the net_ns
/// records, which they refer to).
pub fn dump<W: io::Write>(reg: &Registry, w: &mut ImageWriter<W>) -> Result<(), ObjectError> {
    let werr = ObjectError::Write;
    let r = |i: usize| reg.namespaces[i].image_ref;
    for c in &reg.net {
        let netns = r(c.ns);
        for l in &c.links {
            let mut rec = l.rec;
            rec.netns = netns;
            rec.peer_ns = l.peer_ns.map_or(Ref::UNDEF, r);
            rec.name_len = U32::new(l.name.len() as u32);
            rec.alias_len = U32::new(l.alias.len() as u32);
            w.push(Kind::NetLink, &rec, &[&l.name, &l.alias])
                .map_err(werr)?;
        }
        for a in &c.addrs {
            let mut rec = a.rec;
            rec.netns = netns;
            rec.label_len = U32::new(a.label.len() as u32);
            w.push(Kind::NetAddr, &rec, &[&a.label]).map_err(werr)?;
        }
        for rt in &c.routes {
            let mut rec = *rt;
            rec.netns = netns;
            w.push(Kind::NetRoute, &rec, &[]).map_err(werr)?;
        }
        for q in &c.rules {
            let mut rec = q.rec;
            rec.netns = netns;
            rec.iif_len = U32::new(q.iif.len() as u32);
            rec.oif_len = U32::new(q.oif.len() as u32);
            w.push(Kind::NetRule, &rec, &[&q.iif, &q.oif])
                .map_err(werr)?;
        }
        for (peer, id) in &c.nsids {
            let rec = NetNsidRecord {
                netns,
                peer: r(*peer),
                nsid: I32::new(*id),
                reserved: U32::ZERO,
            };
            w.push(Kind::NetNsid, &rec, &[]).map_err(werr)?;
        }
        for (k, (n, v)) in c.sysctls.iter().enumerate() {
            let as_new = c.sysctl_as_new.get(k).copied().unwrap_or(false);
            let rec = NetSysctlRecord {
                netns,
                name_len: U32::new(n.len() as u32),
                value_len: U32::new(v.len() as u32),
                flags: U32::new(if as_new { sysctl_flags::AS_NEW } else { 0 }),
                reserved: U32::ZERO,
            };
            w.push(Kind::NetSysctl, &rec, &[n, v]).map_err(werr)?;
        }
    }
    Ok(())
}

fn text(b: &[u8]) -> Value {
    json!(String::from_utf8_lossy(b))
}

/// `kstate show` fields of a network record.
pub fn describe(v: &NetView<'_>, m: &mut Map<String, Value>) {
    use crate::objects::namespace::ref_json;
    m.insert("netns".into(), ref_json(v.netns()));
    match v {
        NetView::Link(l) => {
            let r = &l.rec;
            let k = r.kind.get();
            m.insert("name".into(), text(l.name));
            m.insert("ifindex".into(), json!(r.ifindex.get()));
            m.insert("type".into(), json!(link_kind::name(k)));
            m.insert("flags".into(), json!(format!("{:#x}", r.flags.get())));
            m.insert("mtu".into(), json!(r.mtu.get()));
            m.insert("txqlen".into(), json!(r.txqlen.get()));
            let hw = &r.hwaddr[..(r.hwaddr_len.get() as usize).min(32)];
            let hw: Vec<String> = hw.iter().map(|b| format!("{b:02x}")).collect();
            m.insert("hwaddr".into(), json!(hw.join(":")));
            m.insert("alias".into(), text(l.alias));
            m.insert("master".into(), json!(r.master.get()));
            if r.master.get() != 0 {
                m.insert("port_cost".into(), json!(r.port[0].get()));
                m.insert("port_priority".into(), json!(r.port[1].get()));
                let on: Vec<&str> = crate::image::net::port_flags::NAMES
                    .iter()
                    .filter(|(b, _)| r.port[2].get() & b != 0)
                    .map(|(_, n)| *n)
                    .collect();
                m.insert("port_flags".into(), json!(on.join(",")));
            }
            if r.link.get() != 0 {
                m.insert("link".into(), json!(r.link.get()));
            }
            if k == link_kind::VETH {
                if r.link_flags.get() & link_flags::PEER_OUTSIDE != 0 {
                    m.insert("peer".into(), json!("outside"));
                } else {
                    m.insert("peer_ns".into(), ref_json(r.peer_ns));
                    m.insert("peer_ifindex".into(), json!(r.peer_ifindex.get()));
                }
            }
            for (name, val) in link_kind::params(k).iter().zip(r.params.iter()) {
                if !name.is_empty() {
                    m.insert((*name).into(), json!(val.get()));
                }
            }
            if r.addr_family.get() != 0 {
                let f = r.addr_family.get() as u8;
                m.insert("remote".into(), json!(addr_text(f, &r.addrs[0])));
                m.insert("local".into(), json!(addr_text(f, &r.addrs[1])));
            }
        }
        NetView::Addr(a) => {
            let r = &a.rec;
            m.insert("ifindex".into(), json!(r.ifindex.get()));
            m.insert("family".into(), json!(r.family));
            let p = r.present.get();
            if p & addr_present::LOCAL != 0 {
                m.insert("local".into(), json!(addr_text(r.family, &r.local)));
            }
            if p & addr_present::ADDRESS != 0 {
                m.insert("address".into(), json!(addr_text(r.family, &r.address)));
            }
            if p & addr_present::BROADCAST != 0 {
                m.insert("broadcast".into(), json!(addr_text(r.family, &r.broadcast)));
            }
            m.insert("prefix_len".into(), json!(r.prefix_len));
            m.insert("scope".into(), json!(r.scope));
            m.insert("proto".into(), json!(r.proto));
            m.insert("flags".into(), json!(format!("{:#x}", r.flags.get())));
            m.insert("label".into(), text(a.label));
            m.insert("valid".into(), json!(r.valid.get()));
            m.insert("preferred".into(), json!(r.preferred.get()));
        }
        NetView::Route(r) => {
            let p = r.present.get();
            let f = r.family;
            m.insert("family".into(), json!(f));
            m.insert("table".into(), json!(r.table.get()));
            let dst = if p & route_present::DST != 0 {
                format!("{}/{}", addr_text(f, &r.dst), r.dst_len)
            } else {
                "default".into()
            };
            m.insert("dst".into(), json!(dst));
            if p & route_present::SRC != 0 {
                m.insert(
                    "src".into(),
                    json!(format!("{}/{}", addr_text(f, &r.src), r.src_len)),
                );
            }
            if p & route_present::GATEWAY != 0 {
                m.insert("gateway".into(), json!(addr_text(f, &r.gateway)));
            }
            if p & route_present::PREFSRC != 0 {
                m.insert("prefsrc".into(), json!(addr_text(f, &r.prefsrc)));
            }
            m.insert("oif".into(), json!(r.oif.get()));
            m.insert("metric".into(), json!(r.priority.get()));
            m.insert("protocol".into(), json!(r.protocol));
            m.insert("scope".into(), json!(r.scope));
            m.insert("type".into(), json!(r.rtype));
            m.insert("tos".into(), json!(r.tos));
            m.insert("flags".into(), json!(format!("{:#x}", r.flags.get())));
        }
        NetView::Rule(q) => {
            let r = &q.rec;
            let p = r.present.get();
            m.insert("family".into(), json!(r.family));
            m.insert("priority".into(), json!(r.priority.get()));
            m.insert("table".into(), json!(r.table.get()));
            m.insert("action".into(), json!(r.action));
            if p & rule_present::SRC != 0 {
                m.insert(
                    "from".into(),
                    json!(format!("{}/{}", addr_text(r.family, &r.src), r.src_len)),
                );
            }
            if p & rule_present::DST != 0 {
                m.insert(
                    "to".into(),
                    json!(format!("{}/{}", addr_text(r.family, &r.dst), r.dst_len)),
                );
            }
            if p & rule_present::FWMARK != 0 {
                m.insert("fwmark".into(), json!(r.fwmark.get()));
            }
            m.insert("iif".into(), text(q.iif));
            m.insert("oif".into(), text(q.oif));
            m.insert("flags".into(), json!(format!("{:#x}", r.flags.get())));
        }
        NetView::Nsid(n) => {
            m.insert("peer".into(), ref_json(n.peer));
            m.insert("nsid".into(), json!(n.nsid.get()));
        }
        NetView::Sysctl(s) => {
            m.insert("name".into(), text(s.name));
            m.insert("value".into(), text(s.value));
            let as_new = s.rec.flags.get() & sysctl_flags::AS_NEW != 0;
            m.insert("as_new".into(), json!(as_new));
        }
    }
}

/// The `network:` part of `kstate show`: each namespace of the tree, its
/// links (which veth ends face each other, masters), their addresses.
pub fn topology(objects: &[Value]) -> String {
    use std::fmt::Write as _;
    let of = |kind: &'static str| objects.iter().filter(move |o| o["kind"] == json!(kind));
    let mut nss: Vec<u64> = of("net_link").filter_map(|o| o["netns"].as_u64()).collect();
    nss.dedup();
    if nss.is_empty() {
        return String::new();
    }
    let name_of = |ns: u64, idx: &Value| -> String {
        of("net_link")
            .find(|l| l["netns"].as_u64() == Some(ns) && &l["ifindex"] == idx)
            .and_then(|l| l["name"].as_str().map(str::to_string))
            .unwrap_or_else(|| format!("#{idx}"))
    };
    let mut out = String::from("network:\n");
    for ns in nss {
        let _ = writeln!(out, "  net_ns #{ns}:");
        for l in of("net_link").filter(|l| l["netns"].as_u64() == Some(ns)) {
            let name = l["name"].as_str().unwrap_or("?");
            let _ = write!(
                out,
                "    {} {} {} mtu {} flags {} hw {}",
                l["ifindex"],
                name,
                l["type"].as_str().unwrap_or("?"),
                l["mtu"],
                l["flags"].as_str().unwrap_or("?"),
                l["hwaddr"].as_str().unwrap_or("")
            );
            if l["master"].as_u64().is_some_and(|m| m != 0) {
                let _ = write!(out, " master {}", name_of(ns, &l["master"]));
            }
            if let Some(lower) = l.get("link") {
                let _ = write!(out, " on {}", name_of(ns, lower));
            }
            if l["peer"] == json!("outside") {
                let _ = write!(out, " {name} <-> (outside the tree)");
            } else if let Some(p) = l["peer_ns"].as_u64() {
                let _ = write!(
                    out,
                    " {name} <-> {} in #{p}",
                    name_of(p, &l["peer_ifindex"])
                );
            }
            out.push('\n');
            for a in of("net_addr")
                .filter(|a| a["netns"].as_u64() == Some(ns) && a["ifindex"] == l["ifindex"])
            {
                let _ = writeln!(
                    out,
                    "      addr {}/{} {}",
                    a["local"].as_str().or(a["address"].as_str()).unwrap_or("?"),
                    a["prefix_len"],
                    a["label"].as_str().unwrap_or("")
                );
            }
        }
        let routes = of("net_route")
            .filter(|r| r["netns"].as_u64() == Some(ns))
            .count();
        let rules = of("net_rule")
            .filter(|r| r["netns"].as_u64() == Some(ns))
            .count();
        let sysctls = of("net_sysctl")
            .filter(|r| r["netns"].as_u64() == Some(ns))
            .count();
        let as_new = of("net_sysctl")
            .filter(|r| r["netns"].as_u64() == Some(ns) && r["as_new"] == json!(true))
            .count();
        let ids: Vec<String> = of("net_nsid")
            .filter(|r| r["netns"].as_u64() == Some(ns))
            .map(|r| format!("#{}={}", r["peer"], r["nsid"]))
            .collect();
        let _ = writeln!(
            out,
            "    {routes} routes, {rules} rules, {sysctls} sysctls ({as_new} as new), netns ids [{}]",
            ids.join(", ")
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::as_new;

    fn list(v: &[(&str, &str)]) -> Vec<(Vec<u8>, Vec<u8>)> {
        v.iter()
            .map(|(n, v)| (n.as_bytes().to_vec(), v.as_bytes().to_vec()))
            .collect()
    }

    #[test]
    fn as_new_needs_the_new_value_and_untouched_all_and_default_for_lo() {
        let fresh = list(&[
            ("ipv4/ip_forward", "0"),
            ("unix/max_dgram_qlen", "512"),
            ("ipv4/conf/all/log_martians", "0"),
            ("ipv4/conf/default/log_martians", "0"),
            ("ipv4/conf/lo/log_martians", "0"),
            ("ipv4/conf/all/arp_ignore", "0"),
            ("ipv4/conf/default/arp_ignore", "0"),
            ("ipv4/conf/lo/arp_ignore", "0"),
            ("ipv6/conf/all/hop_limit", "64"),
            ("ipv6/conf/default/hop_limit", "64"),
            ("ipv6/conf/lo/hop_limit", "64"),
            ("ipv4/conf/all/arp_announce", "0"),
            ("ipv4/conf/default/arp_announce", "0"),
            ("ipv4/conf/lo/arp_announce", "0"),
        ]);
        let rec = list(&[
            ("ipv4/ip_forward", "0"),
            ("unix/max_dgram_qlen", "77"),
            // all changed: lo, untouched, still does not qualify.
            ("ipv4/conf/all/log_martians", "1"),
            ("ipv4/conf/default/log_martians", "0"),
            ("ipv4/conf/lo/log_martians", "0"),
            // all and default untouched, lo changed.
            ("ipv4/conf/all/arp_ignore", "0"),
            ("ipv4/conf/default/arp_ignore", "0"),
            ("ipv4/conf/lo/arp_ignore", "1"),
            // default changed: lo does not qualify; all does.
            ("ipv6/conf/all/hop_limit", "64"),
            ("ipv6/conf/default/hop_limit", "55"),
            ("ipv6/conf/lo/hop_limit", "64"),
            // Another device: never.
            ("ipv6/conf/veth0/hop_limit", "64"),
            // Unknown to the new namespace: never.
            ("ipv4/conf/all/new_knob", "0"),
            // All three untouched: lo qualifies too.
            ("ipv4/conf/all/arp_announce", "0"),
            ("ipv4/conf/default/arp_announce", "0"),
            ("ipv4/conf/lo/arp_announce", "0"),
        ]);
        let got = as_new(&rec, &fresh, true);
        let want = [
            true, false, false, true, false, true, true, false, true, false, false, false, false,
            true, true, true,
        ];
        assert_eq!(got, want);
        // A lo that is not the loopback (it was renamed, another device took
        // the name): its entries never qualify.
        let got = as_new(&rec, &fresh, false);
        let mut want = want;
        want[15] = false;
        assert_eq!(got, want);
        let got = as_new(&list(&[("ipv4/conf/lo/arp_ignore", "0")]), &fresh, true);
        assert_eq!(
            got,
            [false],
            "all and default unrecorded: lo does not qualify"
        );
    }
}
