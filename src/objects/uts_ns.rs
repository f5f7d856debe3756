//! UTS namespaces: hostname and domainname, read by a helper inside.

use std::io::Write;

use serde_json::{json, Map, Value};
use zerocopy::little_endian::U32;

use super::namespace::ask;
use super::ObjectError;
use crate::image::format::{NsCommon, UtsNsRecord};
use crate::image::reader::UtsNsView;
use crate::image::{ImageWriter, Kind, Ref};
use crate::kstate::registry::{NsContents, NsObject};
use crate::procfs;
use crate::sys::nsquery::Query;

pub fn collect(ns: &NsObject) -> Result<NsContents, ObjectError> {
    let answers = ask(ns, &Query::Uname, "hostname and domainname")?;
    let [hostname, domainname] = answers.as_slice() else {
        return Err(ObjectError::Parse {
            ns: ns.key,
            what: "uname",
        });
    };
    Ok(NsContents::Uts {
        hostname: hostname.clone(),
        domainname: domainname.clone(),
    })
}

pub fn dump<W: Write>(
    w: &mut ImageWriter<W>,
    common: NsCommon,
    ns: &NsObject,
) -> std::io::Result<Ref> {
    let (h, d): (&[u8], &[u8]) = match &ns.contents {
        NsContents::Uts {
            hostname,
            domainname,
        } => (hostname, domainname),
        _ => (b"", b""),
    };
    let rec = UtsNsRecord {
        common,
        hostname_len: U32::new(h.len() as u32),
        domainname_len: U32::new(d.len() as u32),
    };
    w.push(Kind::UtsNs, &rec, &[h, d])
}

pub fn describe(v: &UtsNsView<'_>, out: &mut Map<String, Value>) {
    out.insert("hostname".into(), json!(procfs::show(v.hostname)));
    out.insert("domainname".into(), json!(procfs::show(v.domainname)));
}
