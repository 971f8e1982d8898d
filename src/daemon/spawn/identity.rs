//! Who a service runs as and what the child sets before exec: the user and
//! groups resolved, limits, nice, OOM score and umask checked in the daemon
//! before the clone (the child may not allocate), then handed to the child
//! as its [`child::Work`].

use super::*;

/// Who a service runs as, resolved before forking (the child may not allocate).
#[derive(Debug, Clone)]
pub struct Identity {
    pub(super) uid: Uid,
    pub(super) gid: Gid,
    pub(super) groups: Vec<Gid>,
    pub(super) name: String,
    pub(super) home: std::path::PathBuf,
    /// Its login shell (`SHELL`, as systemd sets it).
    pub(super) shell: std::path::PathBuf,
}

/// Resolves `User=`: a clear error when it cannot be honoured.
/// A number is a uid, as in systemd: the user of that uid when the user
/// database has one, else that uid with the same number as its group, no
/// supplementary groups, `USER`/`LOGNAME` the number and `HOME` `/`.
pub fn resolve_user(name: &str) -> Result<Option<Identity>, SetupError> {
    let numeric = name.parse::<u32>().ok().map(Uid::from_raw);
    let found = match numeric {
        Some(uid) => User::from_uid(uid),
        None => User::from_name(name),
    };
    let user = match (found, numeric) {
        (Ok(Some(u)), _) => u,
        (Ok(None), None) => {
            return Err(SetupError::NoSuch {
                key: "User",
                name: name.to_owned(),
            })
        }
        (Ok(None), Some(uid)) => {
            if uid == Uid::effective() {
                return Ok(None);
            }
            if !Uid::effective().is_root() {
                return Err(SetupError::needs_root("User", name));
            }
            let gid = Gid::from_raw(uid.as_raw());
            return Ok(Some(Identity {
                uid,
                gid,
                groups: vec![gid],
                name: name.to_owned(),
                home: std::path::PathBuf::from("/"),
                shell: std::path::PathBuf::from("/bin/sh"),
            }));
        }
        (Err(e), _) => return Err(SetupError::lookup("User", name, e)),
    };
    let me = Uid::effective();
    if user.uid == me {
        // Already that user: nothing to switch.
        return Ok(None);
    }
    if !me.is_root() {
        return Err(SetupError::needs_root("User", name));
    }
    let cname = std::ffi::CString::new(user.name.as_str())
        .map_err(|_| SetupError::lookup("User", name, Errno::EINVAL))?;
    let groups = nix::unistd::getgrouplist(&cname, user.gid).unwrap_or_else(|_| vec![user.gid]);
    Ok(Some(Identity {
        uid: user.uid,
        gid: user.gid,
        groups,
        name: user.name,
        home: user.dir,
        shell: user.shell,
    }))
}

/// What the child does before exec for a unit's limits and identity,
/// resolved and checked in the daemon before the clone (the child may not
/// allocate, and a value the daemon may not set fails the start here, with
/// the reason).
#[derive(Debug, Default)]
pub(super) struct ChildSetup {
    pub(super) rlimits: Vec<(Resource, u64, u64)>,
    pub(super) nice: Option<i32>,
    pub(super) oom_score_adj: Option<Vec<u8>>,
    pub(super) umask: Option<u32>,
    /// Group= (overrides User's primary group).
    pub(super) gid: Option<Gid>,
    /// SupplementaryGroups= (added to User's groups).
    pub(super) groups: Vec<Gid>,
}

/// Why a unit's identity or limits cannot be honoured: data for callers;
/// `Display` is the one line a user sees, with what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SetupError {
    /// `key=name` (User, Group, SupplementaryGroups) names no one.
    NoSuch { key: &'static str, name: String },
    /// The user or group database could not be read.
    Lookup {
        key: &'static str,
        name: String,
        errno: Errno,
    },
    /// Only a daemon running as root may do this; `runs_as` is its uid
    /// (User) or gid (Group), where the message tells it.
    NeedsRoot {
        key: &'static str,
        name: String,
        runs_as: Option<u32>,
    },
    /// The daemon's own limit `key` could not be read.
    ReadLimit { key: &'static str, errno: Errno },
    /// A hard limit above the daemon's, which only root may raise.
    HardAboveDaemon {
        key: &'static str,
        hard: u64,
        daemon: u64,
    },
    /// LimitNOFILE above the kernel's maximum (fs.nr_open).
    AboveNrOpen { hard: u64, max: u64 },
    /// A Nice below the daemon's own, which only root may set.
    NiceBelowDaemon { nice: i32, current: i32 },
    /// A negative OOMScoreAdjust, which only root may set.
    NegativeOom(i32),
    /// The kernel refused the unit's `key` (a limit, its user or groups)
    /// in the child, after every check here passed.
    Refused { key: &'static str, errno: Errno },
}

impl SetupError {
    fn needs_root(key: &'static str, name: &str) -> SetupError {
        let runs_as = match key {
            "User" => Some(Uid::effective().as_raw()),
            "Group" => Some(Gid::effective().as_raw()),
            _ => None,
        };
        SetupError::NeedsRoot {
            key,
            name: name.to_owned(),
            runs_as,
        }
    }

    fn lookup(key: &'static str, name: &str, errno: Errno) -> SetupError {
        SetupError::Lookup {
            key,
            name: name.to_owned(),
            errno,
        }
    }
}

impl std::fmt::Display for SetupError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let limit = |n: u64| {
            if n == crate::unit::RLIM_INFINITY {
                "infinity".to_owned()
            } else {
                n.to_string()
            }
        };
        let who = |key: &str| if key == "User" { "user" } else { "group" };
        match self {
            SetupError::NoSuch { key, name } => write!(f, "{key}={name}: no such {}", who(key)),
            SetupError::Lookup { key, name, errno } => {
                write!(f, "{key}={name}: cannot look the {} up: {errno}", who(key))
            }
            SetupError::NeedsRoot { key, name, runs_as } => {
                write!(f, "{key}={name} needs the daemon to run as root")?;
                if let Some(id) = runs_as {
                    let kind = if *key == "User" { "uid" } else { "gid" };
                    write!(f, " (it runs as {kind} {id})")?;
                }
                write!(f, "; remove {key}= or run the daemon as root")
            }
            SetupError::ReadLimit { key, errno } => {
                write!(f, "{key}: cannot read the daemon's limit: {errno}")
            }
            SetupError::HardAboveDaemon { key, hard, daemon } => write!(
                f,
                "{key}: hard limit {} is above the daemon's {}, which only root may raise; lower it or run the daemon as root",
                limit(*hard),
                limit(*daemon)
            ),
            SetupError::AboveNrOpen { hard, max } => write!(
                f,
                "LimitNOFILE: hard limit {} is above the kernel's maximum {max} (fs.nr_open); lower it",
                limit(*hard)
            ),
            SetupError::NiceBelowDaemon { nice, current } => write!(
                f,
                "Nice={nice} is below the daemon's nice value {current}, which only root may do; raise it or run the daemon as root"
            ),
            SetupError::NegativeOom(adj) => write!(
                f,
                "OOMScoreAdjust={adj}: a negative value needs root; use 0 or more, or run the daemon as root"
            ),
            SetupError::Refused { key, errno } => write!(
                f,
                "{key}: the kernel refused it: {}; check its value in the unit file",
                io::Error::from(*errno)
            ),
        }
    }
}

/// A group by name or number.
pub(super) fn resolve_group(key: &'static str, name: &str) -> Result<Gid, SetupError> {
    if let Ok(n) = name.parse::<u32>() {
        return Ok(Gid::from_raw(n));
    }
    match Group::from_name(name) {
        Ok(Some(g)) => Ok(g.gid),
        Ok(None) => Err(SetupError::NoSuch {
            key,
            name: name.to_owned(),
        }),
        Err(e) => Err(SetupError::lookup(key, name, e)),
    }
}

/// Resolves and checks a unit's limits and identity against what the
/// daemon may set.
pub(super) fn child_setup(
    limits: &Limits,
    identity: Option<&Identity>,
) -> Result<ChildSetup, SetupError> {
    let root = Uid::effective().is_root();
    let mut setup = ChildSetup::default();
    for r in &limits.rlimits {
        let resource = r.resource();
        // "infinity" is as much as may be had (systemd does the same):
        // fs.nr_open for open files, the daemon's own hard limit without
        // CAP_SYS_RESOURCE (root in a container may lack it). A number
        // above either is an error. (u64::MAX: "infinity".)
        let nr_open = (resource == Resource::RLIMIT_NOFILE)
            .then(nr_open)
            .flatten();
        let mut ceiling = nr_open.unwrap_or(u64::MAX);
        if !root || !can_raise_limits() {
            let (_, hard) = getrlimit(resource).map_err(|errno| SetupError::ReadLimit {
                key: r.name(),
                errno,
            })?;
            if !root && r.hard != u64::MAX && r.hard > hard {
                return Err(SetupError::HardAboveDaemon {
                    key: r.name(),
                    hard: r.hard,
                    daemon: hard,
                });
            }
            ceiling = ceiling.min(hard);
        }
        let most = |n: u64| if n == u64::MAX { ceiling } else { n };
        let (soft, hard_wanted) = (most(r.soft), most(r.hard));
        if let Some(max) = nr_open.filter(|&max| hard_wanted > max) {
            return Err(SetupError::AboveNrOpen { hard: r.hard, max });
        }
        setup.rlimits.push((resource, soft, hard_wanted));
    }
    if let Some(nice) = limits.nice {
        if !root {
            // SAFETY: getpriority only reads the daemon's own nice value.
            let current = unsafe { nix::libc::getpriority(nix::libc::PRIO_PROCESS as _, 0) };
            let ceiling = getrlimit(Resource::RLIMIT_NICE).map_or(0, |(soft, _)| soft);
            let allowed = nice >= current || u64::try_from(20 - nice).is_ok_and(|n| n <= ceiling);
            if !allowed {
                return Err(SetupError::NiceBelowDaemon { nice, current });
            }
        }
        setup.nice = Some(nice);
    }
    if let Some(adj) = limits.oom_score_adjust {
        if !root && adj < 0 {
            return Err(SetupError::NegativeOom(adj));
        }
        setup.oom_score_adj = Some(adj.to_string().into_bytes());
    }
    setup.umask = limits.umask;
    if let Some(name) = &limits.group {
        let gid = resolve_group("Group", name)?;
        let own = identity.is_none() && gid == Gid::effective();
        if !root && !own {
            return Err(SetupError::needs_root("Group", name));
        }
        if !own {
            setup.gid = Some(gid);
        }
    }
    for name in &limits.supplementary_groups {
        let gid = resolve_group("SupplementaryGroups", name)?;
        if !root {
            return Err(SetupError::needs_root("SupplementaryGroups", name));
        }
        setup.groups.push(gid);
    }
    Ok(setup)
}

/// The child's work for a unit's limits and identity ([`child::Work`]):
/// None when there is nothing to do. `identity`'s groups gain Group= and
/// SupplementaryGroups=; without `User=`, those are set on their own.
pub(super) fn child_work(
    setup: ChildSetup,
    identity: Option<&Identity>,
) -> Option<Box<child::Work>> {
    let raw = |gids: &[Gid]| gids.iter().map(|g| g.as_raw()).collect::<Vec<_>>();
    let mut work = child::Work {
        rlimits: setup
            .rlimits
            .iter()
            .map(|&(resource, soft, hard)| (resource as nix::libc::c_int, [soft, hard]))
            .collect(),
        nice: setup.nice,
        oom_score_adj: setup.oom_score_adj,
        umask: setup.umask.map(|m| m as nix::libc::mode_t),
        ..child::Work::default()
    };
    match identity {
        Some(id) => {
            let mut groups = id.groups.clone();
            for gid in setup.gid.iter().chain(&setup.groups) {
                if !groups.contains(gid) {
                    groups.push(*gid);
                }
            }
            work.groups = Some(raw(&groups));
            work.gid = Some(setup.gid.unwrap_or(id.gid).as_raw());
            work.uid = Some(id.uid.as_raw());
            work.log_owner = Some((id.uid.as_raw(), id.gid.as_raw()));
        }
        None => {
            work.groups = (!setup.groups.is_empty()).then(|| raw(&setup.groups));
            work.gid = setup.gid.map(Gid::as_raw);
        }
    }
    let idle = work.rlimits.is_empty()
        && work.nice.is_none()
        && work.oom_score_adj.is_none()
        && work.umask.is_none()
        && work.groups.is_none()
        && work.gid.is_none();
    (!idle).then(|| Box::new(work))
}

/// The kernel's most open files a process may have (fs.nr_open).
fn nr_open() -> Option<u64> {
    std::fs::read_to_string("/proc/sys/fs/nr_open")
        .ok()
        .and_then(|t| t.trim().parse::<u64>().ok())
}

/// Whether this daemon may raise a hard resource limit (CAP_SYS_RESOURCE
/// in its effective set). Read once: a daemon's capabilities do not
/// change, and it was read for every limit of every spawn.
fn can_raise_limits() -> bool {
    static CAN: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *CAN.get_or_init(read_can_raise_limits)
}

fn read_can_raise_limits() -> bool {
    const CAP_SYS_RESOURCE: u32 = 24;
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            let hex = s
                .lines()
                .find_map(|l| l.strip_prefix("CapEff:"))?
                .trim()
                .to_owned();
            u64::from_str_radix(&hex, 16).ok()
        })
        .is_some_and(|caps| caps & (1 << CAP_SYS_RESOURCE) != 0)
}
