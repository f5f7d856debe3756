//! The records of a network namespace's contents (kinds 17..=22): links,
//! addresses, routes, policy rules, netns ids and sysctls, their typed views
//! and their validation. Every record names its namespace (`netns`, an
//! earlier net_ns record); ARCHITECTURE.md gives the layouts.

use zerocopy::little_endian::{I32, U32};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

use super::error::{At, FormatError};
use super::format::{Kind, Ref};

/// IFNAMSIZ less the NUL.
pub const MAX_IFNAME: u32 = 15;
/// IFALIASZ less the NUL.
pub const MAX_ALIAS: u32 = 255;
/// Longest sysctl path (below /proc/sys/net) and value kept.
pub const MAX_SYSCTL_NAME: u32 = 255;
pub const MAX_SYSCTL_VALUE: u32 = 4096;

/// What a link is ([`NetLinkRecord::kind`]).
pub mod link_kind {
    pub const LOOPBACK: u32 = 1;
    pub const VETH: u32 = 2;
    pub const BRIDGE: u32 = 3;
    pub const MACVLAN: u32 = 4;
    pub const VXLAN: u32 = 5;
    pub const TUN: u32 = 6;
    pub const DUMMY: u32 = 7;
    pub const VLAN: u32 = 8;
    pub const MAX: u32 = VLAN;

    pub fn name(k: u32) -> &'static str {
        match k {
            LOOPBACK => "loopback",
            VETH => "veth",
            BRIDGE => "bridge",
            MACVLAN => "macvlan",
            VXLAN => "vxlan",
            TUN => "tun",
            DUMMY => "dummy",
            VLAN => "vlan",
            _ => "unknown",
        }
    }

    /// The names of [`super::NetLinkRecord::params`] for a kind ("" unused).
    pub fn params(k: u32) -> [&'static str; 8] {
        match k {
            BRIDGE => [
                "stp_state",
                "forward_delay",
                "hello_time",
                "max_age",
                "ageing_time",
                "priority",
                "vlan_filtering",
                "",
            ],
            MACVLAN => ["mode", "macvlan_flags", "", "", "", "", "", ""],
            VXLAN => ["id", "port", "ttl", "learning", "tos", "", "", ""],
            TUN => [
                "tun_type",
                "owner",
                "group",
                "pi",
                "vnet_hdr",
                "multi_queue",
                "persist",
                "",
            ],
            VLAN => ["vlan_id", "vlan_protocol", "", "", "", "", "", ""],
            _ => [""; 8],
        }
    }
}

/// Flags of a [`NetLinkRecord`] (`link_flags`).
pub mod link_flags {
    /// A veth whose peer is outside the tree's namespaces.
    pub const PEER_OUTSIDE: u32 = 1;
    pub const KNOWN: u32 = PEER_OUTSIDE;
}

/// One network device (kind 17). Variable parts: `name_len` bytes of name,
/// `alias_len` bytes of alias.
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    FromBytes,
    IntoBytes,
    Immutable,
    KnownLayout,
    Unaligned,
)]
#[repr(C)]
pub struct NetLinkRecord {
    pub netns: Ref,
    /// A veth's peer's namespace when it is one of the tree's (it may be
    /// `netns` itself); UNDEF otherwise.
    pub peer_ns: Ref,
    pub ifindex: U32,
    /// A veth's peer's ifindex (in `peer_ns`), else 0.
    pub peer_ifindex: U32,
    /// [`link_kind`].
    pub kind: U32,
    /// `ifi_flags` (IFF_UP, IFF_PROMISC, IFF_NOARP, …) as read.
    pub flags: U32,
    pub mtu: U32,
    pub txqlen: U32,
    /// ifindex of the master (bridge) in the same namespace, 0 for none.
    pub master: U32,
    /// The lower device of a macvlan or vxlan (same namespace), 0 for none.
    pub link: U32,
    /// [`link_flags`].
    pub link_flags: U32,
    pub hwaddr_len: U32,
    pub hwaddr: [u8; 32],
    /// The kind's own attributes, named by [`link_kind::params`].
    pub params: [U32; 8],
    /// vxlan: remote or group address, then local address (16 bytes each,
    /// IPv4 in the first 4; `addr_family` tells).
    pub addrs: [[u8; 16]; 2],
    /// AF_INET or AF_INET6 for `addrs` (0: none).
    pub addr_family: U32,
    pub name_len: U32,
    pub alias_len: U32,
    pub reserved: U32,
    /// As a bridge port (`master` set): cost, priority, [`port_flags`],
    /// reserved.
    pub port: [U32; 4],
}

/// Switches of a bridge port ([`NetLinkRecord::port`]\[2\]).
pub mod port_flags {
    pub const LEARNING: u32 = 1;
    pub const UNICAST_FLOOD: u32 = 2;
    pub const HAIRPIN: u32 = 4;
    pub const GUARD: u32 = 8;
    pub const ROOT_BLOCK: u32 = 16;
    pub const FAST_LEAVE: u32 = 32;
    pub const ISOLATED: u32 = 64;
    pub const BROADCAST_FLOOD: u32 = 128;
    pub const MULTICAST_FLOOD: u32 = 256;
    pub const PROXY_ARP: u32 = 512;
    pub const KNOWN: u32 = 1023;
    pub const NAMES: [(u32, &str); 10] = [
        (LEARNING, "learning"),
        (UNICAST_FLOOD, "flood"),
        (HAIRPIN, "hairpin"),
        (GUARD, "guard"),
        (ROOT_BLOCK, "root_block"),
        (FAST_LEAVE, "fastleave"),
        (ISOLATED, "isolated"),
        (BROADCAST_FLOOD, "bcast_flood"),
        (MULTICAST_FLOOD, "mcast_flood"),
        (PROXY_ARP, "proxy_arp"),
    ];
}

/// Which optional addresses a [`NetAddrRecord`] holds.
pub mod addr_present {
    pub const LOCAL: u32 = 1;
    pub const ADDRESS: u32 = 2;
    pub const BROADCAST: u32 = 4;
    pub const KNOWN: u32 = 7;
}

/// One address (kind 18). Variable part: `label_len` bytes.
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    FromBytes,
    IntoBytes,
    Immutable,
    KnownLayout,
    Unaligned,
)]
#[repr(C)]
pub struct NetAddrRecord {
    pub netns: Ref,
    pub ifindex: U32,
    /// AF_INET (2) or AF_INET6 (10).
    pub family: u8,
    pub prefix_len: u8,
    pub scope: u8,
    /// IFA_PROTO: 0 unspecified, 1 kernel_lo, 2 kernel_ll, 3 kernel_ra.
    pub proto: u8,
    /// IFA_FLAGS (all 32 bits).
    pub flags: U32,
    /// Remaining lifetimes in seconds (u32::MAX: forever).
    pub valid: U32,
    pub preferred: U32,
    /// [`addr_present`].
    pub present: U32,
    pub local: [u8; 16],
    pub address: [u8; 16],
    pub broadcast: [u8; 16],
    pub label_len: U32,
    pub reserved: U32,
}

/// Which optional addresses a [`NetRouteRecord`] holds.
pub mod route_present {
    pub const DST: u32 = 1;
    pub const SRC: u32 = 2;
    pub const GATEWAY: u32 = 4;
    pub const PREFSRC: u32 = 8;
    pub const OIF: u32 = 16;
    pub const PRIORITY: u32 = 32;
    pub const KNOWN: u32 = 63;
}

/// One route (kind 19).
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    FromBytes,
    IntoBytes,
    Immutable,
    KnownLayout,
    Unaligned,
)]
#[repr(C)]
pub struct NetRouteRecord {
    pub netns: Ref,
    pub family: u8,
    pub dst_len: u8,
    pub src_len: u8,
    pub tos: u8,
    pub protocol: u8,
    pub scope: u8,
    /// RTN_* (unicast 1, local 2, broadcast 3, …).
    pub rtype: u8,
    pub reserved: u8,
    pub table: U32,
    /// rtm_flags.
    pub flags: U32,
    pub oif: U32,
    pub priority: U32,
    /// [`route_present`].
    pub present: U32,
    pub reserved2: U32,
    pub dst: [u8; 16],
    pub src: [u8; 16],
    pub gateway: [u8; 16],
    pub prefsrc: [u8; 16],
}

/// Which optional fields a [`NetRuleRecord`] holds.
pub mod rule_present {
    pub const PRIORITY: u32 = 1;
    pub const FWMARK: u32 = 2;
    pub const FWMASK: u32 = 4;
    pub const SRC: u32 = 8;
    pub const DST: u32 = 16;
    pub const KNOWN: u32 = 31;
}

/// One policy rule (kind 20). Variable parts: `iif_len` bytes of the input
/// interface name, `oif_len` bytes of the output one.
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    FromBytes,
    IntoBytes,
    Immutable,
    KnownLayout,
    Unaligned,
)]
#[repr(C)]
pub struct NetRuleRecord {
    pub netns: Ref,
    pub family: u8,
    pub dst_len: u8,
    pub src_len: u8,
    pub tos: u8,
    /// FR_ACT_* (1 to_tbl, 2 goto, 3 nop, 6 blackhole, 7 unreachable, 8 prohibit).
    pub action: u8,
    pub reserved: [u8; 3],
    pub table: U32,
    pub priority: U32,
    pub fwmark: U32,
    pub fwmask: U32,
    /// fib_rule_hdr flags (FIB_RULE_INVERT, …).
    pub flags: U32,
    /// [`rule_present`].
    pub present: U32,
    pub src: [u8; 16],
    pub dst: [u8; 16],
    pub iif_len: U32,
    pub oif_len: U32,
}

/// The id `netns` gives `peer` (kind 21).
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    FromBytes,
    IntoBytes,
    Immutable,
    KnownLayout,
    Unaligned,
)]
#[repr(C)]
pub struct NetNsidRecord {
    pub netns: Ref,
    /// A net_ns record; an external one stands for the restarting process's.
    pub peer: Ref,
    pub nsid: I32,
    pub reserved: U32,
}

/// Flags of a [`NetSysctlRecord`] (record version 2; a version-1 record
/// reads as none).
pub mod sysctl_flags {
    /// The value at checkpoint is the one a brand-new network namespace
    /// starts with (the name is a global one or in conf/all, conf/default
    /// or conf/lo; for conf/lo, all and default of the same name are too):
    /// a restart neither reads nor writes it.
    pub const AS_NEW: u32 = 1;
    pub const KNOWN: u32 = AS_NEW;
}

/// Size of the fixed part of a version-1 [`NetSysctlRecord`] (no flags).
pub const NET_SYSCTL_V1_LEN: usize = core::mem::offset_of!(NetSysctlRecord, flags);

/// One sysctl of a network namespace (kind 22). Variable parts: `name_len`
/// bytes of its path below /proc/sys/net (`ipv4/conf/all/forwarding`), then
/// `value_len` bytes of value (as read, trailing newline removed). Version
/// 2 appends `flags` and `reserved`.
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    FromBytes,
    IntoBytes,
    Immutable,
    KnownLayout,
    Unaligned,
)]
#[repr(C)]
pub struct NetSysctlRecord {
    pub netns: Ref,
    pub name_len: U32,
    pub value_len: U32,
    /// [`sysctl_flags`] (version 2).
    pub flags: U32,
    pub reserved: U32,
}

#[derive(Clone, Copy, Debug)]
pub struct LinkView<'a> {
    pub rec: NetLinkRecord,
    pub name: &'a [u8],
    pub alias: &'a [u8],
}

#[derive(Clone, Copy, Debug)]
pub struct AddrView<'a> {
    pub rec: NetAddrRecord,
    pub label: &'a [u8],
}

#[derive(Clone, Copy, Debug)]
pub struct RuleView<'a> {
    pub rec: NetRuleRecord,
    pub iif: &'a [u8],
    pub oif: &'a [u8],
}

#[derive(Clone, Copy, Debug)]
pub struct SysctlView<'a> {
    pub rec: NetSysctlRecord,
    pub name: &'a [u8],
    pub value: &'a [u8],
}

/// A typed view of one network record.
#[derive(Clone, Copy, Debug)]
pub enum NetView<'a> {
    Link(LinkView<'a>),
    Addr(AddrView<'a>),
    Route(NetRouteRecord),
    Rule(RuleView<'a>),
    Nsid(NetNsidRecord),
    Sysctl(SysctlView<'a>),
}

impl NetView<'_> {
    pub fn kind(&self) -> Kind {
        match self {
            NetView::Link(_) => Kind::NetLink,
            NetView::Addr(_) => Kind::NetAddr,
            NetView::Route(_) => Kind::NetRoute,
            NetView::Rule(_) => Kind::NetRule,
            NetView::Nsid(_) => Kind::NetNsid,
            NetView::Sysctl(_) => Kind::NetSysctl,
        }
    }

    /// The namespace the record belongs to.
    pub fn netns(&self) -> Ref {
        match self {
            NetView::Link(v) => v.rec.netns,
            NetView::Addr(v) => v.rec.netns,
            NetView::Route(r) => r.netns,
            NetView::Rule(v) => v.rec.netns,
            NetView::Nsid(r) => r.netns,
            NetView::Sysctl(v) => v.rec.netns,
        }
    }
}

fn invalid(at: At, field: &'static str, what: &'static str) -> FormatError {
    FormatError::Invalid { at, field, what }
}

fn limit(at: At, field: &'static str, v: u32, max: u32) -> Result<(), FormatError> {
    if v > max {
        return Err(invalid(at, field, "larger than the kernel allows"));
    }
    Ok(())
}

fn family_ok(at: At, family: u8) -> Result<(), FormatError> {
    if family != libc::AF_INET as u8 && family != libc::AF_INET6 as u8 {
        return Err(invalid(at, "family", "neither AF_INET nor AF_INET6"));
    }
    Ok(())
}

fn prefix_ok(at: At, field: &'static str, family: u8, len: u8) -> Result<(), FormatError> {
    let max = if family == libc::AF_INET as u8 {
        32
    } else {
        128
    };
    if len > max {
        return Err(invalid(at, field, "longer than the address"));
    }
    Ok(())
}

fn ifname_ok(at: At, field: &'static str, name: &[u8]) -> Result<(), FormatError> {
    if name
        .iter()
        .any(|b| *b == 0 || *b == b'/' || b.is_ascii_whitespace())
    {
        return Err(invalid(at, field, "not a valid interface name"));
    }
    Ok(())
}

/// A sysctl path below /proc/sys/net: components of `[A-Za-z0-9_.:-]`, none
/// empty, `.` or `..`, so a restart writes nowhere else.
pub fn sysctl_name_ok(name: &[u8]) -> bool {
    !name.is_empty()
        && name.split(|b| *b == b'/').all(|c| {
            !c.is_empty()
                && c != b"."
                && c != b".."
                && c.iter()
                    .all(|b| b.is_ascii_alphanumeric() || b"_.:-".contains(b))
        })
}

/// Length checks done before any variable part is taken, then the views.
pub(crate) fn parse<'a>(
    kind: Kind,
    fixed: &'a [u8],
    at: At,
    mut take: impl FnMut(u64, &'static str) -> Result<&'a [u8], FormatError>,
) -> Result<NetView<'a>, FormatError> {
    use super::reader::load_fixed;
    Ok(match kind {
        Kind::NetLink => {
            let rec: NetLinkRecord = load_fixed(fixed);
            limit(at, "name_len", rec.name_len.get(), MAX_IFNAME)?;
            limit(at, "alias_len", rec.alias_len.get(), MAX_ALIAS)?;
            let name = take(rec.name_len.get() as u64, "name_len")?;
            let alias = take(rec.alias_len.get() as u64, "alias_len")?;
            NetView::Link(LinkView { rec, name, alias })
        }
        Kind::NetAddr => {
            let rec: NetAddrRecord = load_fixed(fixed);
            limit(at, "label_len", rec.label_len.get(), MAX_IFNAME)?;
            let label = take(rec.label_len.get() as u64, "label_len")?;
            NetView::Addr(AddrView { rec, label })
        }
        Kind::NetRoute => NetView::Route(load_fixed(fixed)),
        Kind::NetRule => {
            let rec: NetRuleRecord = load_fixed(fixed);
            limit(at, "iif_len", rec.iif_len.get(), MAX_IFNAME)?;
            limit(at, "oif_len", rec.oif_len.get(), MAX_IFNAME)?;
            let iif = take(rec.iif_len.get() as u64, "iif_len")?;
            let oif = take(rec.oif_len.get() as u64, "oif_len")?;
            NetView::Rule(RuleView { rec, iif, oif })
        }
        Kind::NetNsid => NetView::Nsid(load_fixed(fixed)),
        _ => {
            let rec: NetSysctlRecord = load_fixed(fixed);
            limit(at, "name_len", rec.name_len.get(), MAX_SYSCTL_NAME)?;
            limit(at, "value_len", rec.value_len.get(), MAX_SYSCTL_VALUE)?;
            let name = take(rec.name_len.get() as u64, "name_len")?;
            let value = take(rec.value_len.get() as u64, "value_len")?;
            NetView::Sysctl(SysctlView { rec, name, value })
        }
    })
}

/// The record's own rules; `check_ref(field, ref, kind, undef_ok)` checks a
/// reference.
pub(crate) fn check(
    at: At,
    v: &NetView<'_>,
    mut check_ref: impl FnMut(&'static str, Ref, Kind, bool) -> Result<(), FormatError>,
) -> Result<(), FormatError> {
    check_ref("netns", v.netns(), Kind::NetNs, false)?;
    match v {
        NetView::Link(l) => {
            let r = &l.rec;
            check_ref("peer_ns", r.peer_ns, Kind::NetNs, true)?;
            let k = r.kind.get();
            if k == 0 || k > link_kind::MAX {
                return Err(invalid(at, "kind", "not a known kind of link"));
            }
            if r.ifindex.get() == 0 || r.ifindex.get() > i32::MAX as u32 {
                return Err(invalid(at, "ifindex", "not a valid ifindex"));
            }
            if r.link_flags.get() & !link_flags::KNOWN != 0 {
                return Err(FormatError::NonZero {
                    at,
                    field: "link_flags",
                    value: r.link_flags.get() as u64,
                });
            }
            limit(at, "hwaddr_len", r.hwaddr_len.get(), 32)?;
            if r.port[2].get() & !port_flags::KNOWN != 0 || r.port[3].get() != 0 {
                return Err(FormatError::NonZero {
                    at,
                    field: "port",
                    value: r.port[2].get() as u64,
                });
            }
            if l.name.is_empty() {
                return Err(invalid(at, "name_len", "a link has a name"));
            }
            ifname_ok(at, "name", l.name)?;
            if k == link_kind::VETH
                && r.link_flags.get() & link_flags::PEER_OUTSIDE == 0
                && (r.peer_ns.is_undef() || r.peer_ifindex.get() == 0)
            {
                return Err(invalid(
                    at,
                    "peer_ns",
                    "a veth inside the tree without its peer",
                ));
            }
            if r.addr_family.get() != 0 {
                family_ok(at, r.addr_family.get() as u8)?;
            }
        }
        NetView::Addr(a) => {
            let r = &a.rec;
            family_ok(at, r.family)?;
            prefix_ok(at, "prefix_len", r.family, r.prefix_len)?;
            if r.present.get() & !addr_present::KNOWN != 0 {
                return Err(invalid(at, "present", "unknown bits"));
            }
            if r.present.get() & (addr_present::LOCAL | addr_present::ADDRESS) == 0 {
                return Err(invalid(at, "present", "an address without an address"));
            }
            ifname_ok(at, "label", a.label)?;
        }
        NetView::Route(r) => {
            family_ok(at, r.family)?;
            prefix_ok(at, "dst_len", r.family, r.dst_len)?;
            prefix_ok(at, "src_len", r.family, r.src_len)?;
            if r.present.get() & !route_present::KNOWN != 0 {
                return Err(invalid(at, "present", "unknown bits"));
            }
        }
        NetView::Rule(rv) => {
            let r = &rv.rec;
            family_ok(at, r.family)?;
            prefix_ok(at, "dst_len", r.family, r.dst_len)?;
            prefix_ok(at, "src_len", r.family, r.src_len)?;
            if r.present.get() & !rule_present::KNOWN != 0 {
                return Err(invalid(at, "present", "unknown bits"));
            }
            ifname_ok(at, "iif", rv.iif)?;
            ifname_ok(at, "oif", rv.oif)?;
        }
        NetView::Nsid(n) => {
            check_ref("peer", n.peer, Kind::NetNs, false)?;
            if n.nsid.get() < 0 {
                return Err(invalid(at, "nsid", "negative"));
            }
            if n.peer == n.netns {
                return Err(invalid(at, "peer", "a namespace's id for itself"));
            }
        }
        NetView::Sysctl(s) => {
            if !sysctl_name_ok(s.name) {
                return Err(invalid(at, "name", "not a path below /proc/sys/net"));
            }
            if s.rec.flags.get() & !sysctl_flags::KNOWN != 0 {
                return Err(invalid(
                    at,
                    "flags",
                    "unknown bits (only bit 0, as_new, is defined)",
                ));
            }
            if s.rec.reserved.get() != 0 {
                return Err(FormatError::NonZero {
                    at,
                    field: "reserved",
                    value: s.rec.reserved.get() as u64,
                });
            }
        }
    }
    Ok(())
}

/// The 16 address bytes as text (IPv4 in the first 4 for AF_INET).
pub fn addr_text(family: u8, a: &[u8; 16]) -> String {
    if family == libc::AF_INET as u8 {
        std::net::Ipv4Addr::new(a[0], a[1], a[2], a[3]).to_string()
    } else {
        std::net::Ipv6Addr::from(*a).to_string()
    }
}

const _: () = {
    assert!(core::mem::size_of::<NetLinkRecord>() % 8 == 0);
    assert!(core::mem::size_of::<NetAddrRecord>() % 8 == 0);
    assert!(core::mem::size_of::<NetRouteRecord>() % 8 == 0);
    assert!(core::mem::size_of::<NetRuleRecord>() % 8 == 0);
    assert!(core::mem::size_of::<NetNsidRecord>() % 8 == 0);
    assert!(core::mem::size_of::<NetSysctlRecord>() % 8 == 0);
    assert!(NET_SYSCTL_V1_LEN == 16);
    assert!(core::mem::size_of::<NetLinkRecord>() == 184);
    assert!(core::mem::size_of::<NetAddrRecord>() == 88);
    assert!(core::mem::size_of::<NetRouteRecord>() == 104);
    assert!(core::mem::size_of::<NetRuleRecord>() == 80);
    assert!(core::mem::size_of::<NetSysctlRecord>() == 24);
};
