//! sd_notify messages (SPEC §11): the text of one datagram as the messages
//! it holds, one per line. Pure, so the supervisor acts on the result and
//! the fuzz target (`fuzz/`, `sd_notify`) checks it; lines it does not know
//! are ignored, as systemd does.

use std::time::Duration;

/// One line of a notify datagram that means something to diakonos.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// `READY=1`
    Ready,
    /// `RELOADING=1`: running, reloading its configuration until READY=1.
    Reloading,
    /// `MAINPID=N`: the text after `=`, trimmed (the supervisor checks that
    /// it names a process of the service's group).
    MainPid(String),
    /// `STOPPING=1`
    Stopping,
    /// `WATCHDOG=1`: a ping.
    Watchdog,
    /// `WATCHDOG=trigger`: act as if the watchdog had run out.
    WatchdogTrigger,
    /// `WATCHDOG_USEC=N`: a new watchdog interval, from now.
    WatchdogUsec(Duration),
    /// `EXTEND_TIMEOUT_USEC=N`
    ExtendTimeout(Duration),
    /// `ERRNO=N`: Some for a positive number, None clears it.
    Errno(Option<i32>),
    /// `STATUS=text`: control characters dropped, at most 200 characters;
    /// None clears it.
    Status(Option<String>),
}

/// The messages of a datagram's text, in order.
pub fn parse(payload: &str) -> Vec<Message> {
    let mut out = Vec::new();
    for line in payload.lines() {
        let msg = match line.trim_end_matches('\r') {
            "READY=1" => Message::Ready,
            "RELOADING=1" => Message::Reloading,
            "STOPPING=1" => Message::Stopping,
            "WATCHDOG=1" => Message::Watchdog,
            "WATCHDOG=trigger" => Message::WatchdogTrigger,
            l => {
                if let Some(n) = l.strip_prefix("WATCHDOG_USEC=") {
                    match n.trim().parse::<u64>() {
                        Ok(n) => Message::WatchdogUsec(Duration::from_micros(n)),
                        Err(_) => continue,
                    }
                } else if let Some(n) = l.strip_prefix("EXTEND_TIMEOUT_USEC=") {
                    match n.trim().parse::<u64>() {
                        Ok(n) => Message::ExtendTimeout(Duration::from_micros(n)),
                        Err(_) => continue,
                    }
                } else if let Some(n) = l.strip_prefix("MAINPID=") {
                    Message::MainPid(n.trim().chars().take(20).collect())
                } else if let Some(n) = l.strip_prefix("ERRNO=") {
                    Message::Errno(n.trim().parse().ok().filter(|&n: &i32| n > 0))
                } else if let Some(text) = l.strip_prefix("STATUS=") {
                    let text: String = text.chars().filter(|c| !c.is_control()).take(200).collect();
                    Message::Status((!text.is_empty()).then_some(text))
                } else {
                    continue;
                }
            }
        };
        out.push(msg);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_of_a_datagram() {
        // One per line, CRLF tolerated, unknown lines and bad numbers ignored.
        let got = parse(
            "READY=1\r\nSTATUS=serving \x1b[31m1\x07 req\nMAINPID=7\nRELOADING=1\nWATCHDOG_USEC=x\n\
             WATCHDOG_USEC= 500\nEXTEND_TIMEOUT_USEC=2000000\nERRNO=-3\nERRNO=5\nWATCHDOG=1\n\
             WATCHDOG=trigger\nSTOPPING=1\nSTATUS=\n",
        );
        assert_eq!(
            got,
            vec![
                Message::Ready,
                Message::Status(Some("serving [31m1 req".to_owned())),
                Message::MainPid("7".to_owned()),
                Message::Reloading,
                Message::WatchdogUsec(Duration::from_micros(500)),
                Message::ExtendTimeout(Duration::from_secs(2)),
                Message::Errno(None),
                Message::Errno(Some(5)),
                Message::Watchdog,
                Message::WatchdogTrigger,
                Message::Stopping,
                Message::Status(None),
            ]
        );
        let long = format!("STATUS={}", "x".repeat(300));
        assert_eq!(parse(&long), vec![Message::Status(Some("x".repeat(200)))]);
    }
}
