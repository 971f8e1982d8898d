//! `events` from the client's side: the stream of state changes, followed
//! across a daemon's hand-over to its successor, ended when the daemon
//! stops or drops this client, or when no one reads stdout any more.

use super::*;

/// `events`: sends the request and calls `each` for every state change,
/// staying connected: when the daemon hands over to a successor
/// (`daemon-upgrade`) the stream goes on from the new daemon. It ends with
/// an error when the daemon stops (no successor comes) or dropped this
/// client (its last line says why), and quietly when `each` says no one
/// reads any more (stdout closed).
pub fn events(
    g: &Global,
    names: Vec<String>,
    mut each: impl FnMut(&protocol::EventRecord),
) -> Result<(), Error> {
    let home = Home::resolve(g.home.clone()).map_err(Error::failed)?;
    let (service_dir, named) = paths::service_dir(g.service_dir.clone());
    if !named || service_dir.is_dir() {
        // A daemon for the stream to come from.
        request(g, Request::List, true)?;
    }
    let frame = RequestFrame::new(Request::Events(names), named.then(|| service_dir.clone()));
    let bytes = protocol::encode_request(&frame)
        .map_err(|e| Error::failed(format!("cannot encode the request: {e}")))?;
    let mut daemon = daemon_identity(g);
    let mut stream = connect(&home).map_err(|e| e.into_error(&home))?;
    std::io::Write::write_all(&mut stream, &bytes)
        .map_err(|e| Error::failed(format!("lost the connection to the daemon: {e}")))?;
    loop {
        if stdout_reader_gone(&stream) {
            return Ok(()); // `| head -1` is done: no line to wait for.
        }
        let body = match protocol::read_frame(&mut stream, MAX_REPLY) {
            Ok(body) => body,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::UnexpectedEof | io::ErrorKind::ConnectionReset
                ) =>
            {
                // The daemon closed the stream (or died): its successor's,
                // if one comes (never one started here).
                stream = successor(&home, &bytes, daemon).map_err(|still_running| {
                    if still_running {
                        // It closed this stream and runs on: the client was
                        // dropped, its last line lost in a full buffer.
                        Error::failed_hint(
                            "events: dropped by the daemon: this client did not keep up",
                            "read the stream as it comes (a slow pipe reader stalls it); `diakonos events` again follows from now",
                        )
                    } else {
                        Error::failed_hint(
                            "the daemon stopped: no more events",
                            "start it again (any command does), then `diakonos events`",
                        )
                    }
                })?;
                daemon = daemon_identity(g);
                continue;
            }
            Err(e) => {
                return Err(Error::failed(format!(
                    "lost the connection to the daemon: {e}"
                )))
            }
        };
        let reply = protocol::decode_reply(&body)
            .map_err(|e| Error::failed(format!("cannot understand the daemon's reply: {e}")))?;
        match reply.response {
            Response::Event(rec) => {
                // A closed stdout ends the process there (cli/output.rs).
                each(&rec);
            }
            Response::Error { message, hint } => return Err(Error::Failed { message, hint }),
            other => return Err(unexpected(&other)),
        }
    }
}

/// After a daemon (`old`) closed an event stream: the stream (`request`
/// sent again) from the daemon that took over, if one answers within a
/// few seconds (a hand-over starts it at once). Asked only once the old
/// one is gone: a dying daemon may still take a connection.
/// Err(true): the old daemon still runs after the wait (it dropped this
/// client); Err(false): no successor answered.
fn successor(home: &Home, request: &[u8], old: Option<(i32, u64)>) -> Result<UnixStream, bool> {
    const WAIT: Duration = Duration::from_secs(3);
    let until = Instant::now() + WAIT;
    let mut old_alive = false;
    while Instant::now() < until {
        old_alive = old.is_some_and(|(pid, start)| procfs::same_process(pid, start));
        if old_alive {
            std::thread::sleep(Duration::from_millis(20));
            continue;
        }
        if let Ok(mut stream) = connect(home) {
            if std::io::Write::write_all(&mut stream, request).is_ok() {
                errln!("diakonos: the daemon was replaced; following the new one");
                return Ok(stream);
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Err(old_alive)
}

/// Waits until the daemon has something for `stream` or stdout's reader
/// is gone (a pipe or socket whose other end closed, or no stdout at all):
/// which of the two. A terminal or a file never goes.
fn stdout_reader_gone(stream: &UnixStream) -> bool {
    use nix::libc;
    let mut fds = [
        libc::pollfd {
            fd: stream.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        },
        libc::pollfd {
            fd: libc::STDOUT_FILENO,
            events: 0,
            revents: 0,
        },
    ];
    // SAFETY: two pollfds of ours, valid for the call; poll only writes
    // their `revents`. A signal (EINTR) counts as "not gone".
    unsafe {
        libc::poll(fds.as_mut_ptr(), 2, -1);
    }
    fds[1].revents & (libc::POLLERR | libc::POLLHUP | libc::POLLNVAL) != 0
}
