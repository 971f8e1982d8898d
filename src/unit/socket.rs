//! `[socket]` (SPEC §15): the addresses the daemon binds for a unit and
//! passes to it with the systemd protocol. Pure: checks and types only;
//! binding is `daemon/driver/listeners.rs`.

use std::net::SocketAddr;
use std::path::PathBuf;

use toml::Spanned;

use super::diag::{esc, Ctx};
use super::schema;
use super::shape::Values;
use super::values::{choice, count};

/// One address of `[socket]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ListenAddr {
    Tcp(SocketAddr),
    /// Absolute.
    Unix(PathBuf),
}

impl std::fmt::Display for ListenAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ListenAddr::Tcp(a) => write!(f, "{a}"),
            ListenAddr::Unix(p) => write!(f, "{}", p.display()),
        }
    }
}

/// One socket: an address and whether it is a datagram socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listen {
    pub addr: ListenAddr,
    pub datagram: bool,
}

/// A unit's `[socket]`, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SocketSpec {
    /// Stream sockets first, then datagram ones: fds 3, 4, ... in this order.
    pub listen: Vec<Listen>,
    /// `LISTEN_FDNAMES` entry of every socket.
    pub name: String,
    /// Permissions of the Unix sockets.
    pub mode: u32,
    pub backlog: i32,
    pub on_demand: bool,
}

/// Reads `[socket]`; None when the unit has none (or it is all errors).
pub(super) fn socket(cx: &mut Ctx<'_>, v: &Values<'_>, unit: &str) -> Option<SocketSpec> {
    let written = schema::keys_of(schema::Section::Socket).any(|k| v.entries.contains_key(k.name));
    if !written {
        return None;
    }
    let mut listen = Vec::new();
    for (key, datagram) in [("ListenStream", false), ("ListenDatagram", true)] {
        for item in v.strings(key).unwrap_or_default() {
            if let Some(addr) = address(cx, key, &item) {
                listen.push(Listen { addr, datagram });
            }
        }
    }
    let name = match v.string("FileDescriptorName") {
        Some(n) if n.get_ref().is_empty() || n.get_ref().contains([':', '\0', '\n']) => {
            cx.at(
                n.span(),
                format!(
                    "`FileDescriptorName` is \"{}\"; expected a non-empty name without `:`",
                    esc(n.get_ref())
                ),
                None,
            );
            unit.to_string()
        }
        Some(n) => n.into_inner(),
        None => unit.to_string(),
    };
    let mode_text = v
        .string("SocketMode")
        .map(Spanned::into_inner)
        .unwrap_or_else(|| schema::default_str("SocketMode").to_string());
    let mode = match u32::from_str_radix(&mode_text, 8) {
        Ok(m) if m <= 0o777 => m,
        _ => {
            let span = v.get("SocketMode").map(|s| s.span()).unwrap_or(0..0);
            cx.at(
                span,
                format!(
                    "`SocketMode` is \"{}\"; expected octal permissions like \"0660\"",
                    esc(&mode_text)
                ),
                None,
            );
            0o660
        }
    };
    let backlog = i32::try_from(count(cx, v, "Backlog")).unwrap_or(128);
    let on_demand = choice(
        cx,
        v,
        "Activation",
        &[("eager", false), ("on-demand", true)],
    );
    Some(SocketSpec {
        listen,
        name,
        mode,
        backlog,
        on_demand,
    })
}

/// An IP literal with a port, or an absolute path; never a name to look up.
fn address(cx: &mut Ctx<'_>, key: &str, item: &Spanned<String>) -> Option<ListenAddr> {
    let text = item.get_ref();
    if text.starts_with('/') {
        if text.contains('\0') || text.len() > crate::paths::MAX_SOCKET_PATH {
            cx.at(
                item.span(),
                format!("`{key}` path \"{}\" is longer than 107 bytes or has a NUL; expected a short absolute path", esc(text)),
                None,
            );
            return None;
        }
        return Some(ListenAddr::Unix(PathBuf::from(text)));
    }
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Some(ListenAddr::Tcp(addr));
    }
    let (why, hint) = if text.parse::<u16>().is_ok() {
        (
            "a bare port".to_string(),
            format!("write \"127.0.0.1:{text}\" or \"0.0.0.0:{text}\""),
        )
    } else if let Some((host, port)) = text.rsplit_once(':').filter(|(h, _)| !h.is_empty()) {
        if port.parse::<u16>().is_ok() {
            (
                format!("a host name (`{}`), not an IP address", esc(host)),
                format!("write an IP literal, like \"127.0.0.1:{port}\" (the daemon never looks names up)"),
            )
        } else {
            (
                "not ADDRESS:PORT".to_string(),
                "write \"127.0.0.1:8080\"".to_string(),
            )
        }
    } else {
        (
            "a relative path".to_string(),
            "write an absolute path like \"/run/app.sock\" (or ADDRESS:PORT for TCP)".to_string(),
        )
    };
    cx.at(
        item.span(),
        format!("`{key}` entry \"{}\" is {why}; expected an IP literal with a port or an absolute Unix socket path", esc(text)),
        Some(hint),
    );
    None
}
