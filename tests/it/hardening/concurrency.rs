//! Concurrency: crowds of clients and racing jobs.

use super::*;

// 2. Concurrency.

#[test]
fn a_crowd_of_120_list_commands_all_get_complete_output() {
    // 120 `diakonos list` processes at once all exit 0 with every unit in their output.
    let h = Home::new("a_crowd_of_120_list_commands_all_get_complete_output");
    let names = ["alpha", "bravo", "charlie", "delta", "echo"];
    for n in names {
        h.unit(n, SLEEPER);
    }
    let daemon = start_daemon(&h);
    h.ok(&["start", "alpha"]);
    let gate = Barrier::new(120);
    let outputs: Vec<(bool, Output)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..120)
            .map(|i| {
                let (h, gate) = (&h, &gate);
                s.spawn(move || {
                    let json = i % 2 == 0;
                    let args: &[&str] = if json { &["list", "--json"] } else { &["list"] };
                    let cmd = h.command(args);
                    gate.wait();
                    (json, h.run(cmd))
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|t| t.join().expect("a client thread panicked"))
            .collect()
    });
    for (i, (json, out)) in outputs.iter().enumerate() {
        assert!(
            out.status.success(),
            "client {i}: {}\n{}",
            out.status,
            stderr(out)
        );
        let text = stdout(out);
        if *json {
            let v: serde_json::Value = serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("client {i}: not JSON ({e}): {text}"));
            assert_eq!(v.as_array().map(Vec::len), Some(5), "client {i}: {text}");
        }
        for n in names {
            assert!(text.contains(n), "client {i} is missing {n}: {text}");
        }
    }
    healthy(&h, daemon, &names);
}

#[test]
fn a_crowd_of_100_raw_clients_all_get_complete_replies() {
    // 100 raw connections send a hand-encoded List request at the same moment and each reads a whole, correct reply.
    let h = Home::new("a_crowd_of_100_raw_clients_all_get_complete_replies");
    let names = ["alpha", "bravo", "charlie"];
    for n in names {
        h.unit(n, SLEEPER);
    }
    let daemon = start_daemon(&h);
    let baseline = baseline_fds(&h, daemon);
    let gate = Barrier::new(100);
    let replies: Vec<Result<Response, String>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..100)
            .map(|_| {
                let (h, gate) = (&h, &gate);
                s.spawn(move || {
                    let mut s = connect(h);
                    gate.wait();
                    s.write_all(&list_frame()).map_err(|e| e.to_string())?;
                    let body = read_frame(&mut s, Duration::from_secs(20))?;
                    decode_reply(&body)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|t| t.join().expect("a client thread panicked"))
            .collect()
    });
    for (i, reply) in replies.iter().enumerate() {
        match reply {
            Ok(reply) => assert_eq!(unit_names(reply), names, "client {i}"),
            Err(e) => panic!("client {i}: {e}"),
        }
    }
    fds_return_to(daemon, baseline, WAIT);
    healthy(&h, daemon, &names);
}

#[test]
fn racing_start_stop_restart_jobs_leave_a_consistent_state() {
    // 40 concurrent start/stop/restart jobs on a unit and its dependent each exit 0 or 1, and afterwards every child of the daemon is a unit it lists.
    let h = Home::new("racing_start_stop_restart_jobs_leave_a_consistent_state");
    h.unit("web", SLEEPER);
    h.unit(
        "app",
        "[unit]\nRequires = [\"web\"]\n[service]\nExecStart = \"sleep 1000\"\n",
    );
    let daemon = start_daemon(&h);
    let seed = seed("racing_start_stop_restart_jobs_leave_a_consistent_state");
    let mut rng = Rng::new(seed);
    let jobs: Vec<[&str; 2]> = (0..40)
        .map(|_| {
            *rng.pick(&[
                ["start", "app"],
                ["start", "web"],
                ["stop", "web"],
                ["stop", "app"],
                ["restart", "web"],
                ["restart", "app"],
            ])
        })
        .collect();
    let gate = Barrier::new(jobs.len());
    let outs: Vec<Output> = std::thread::scope(|s| {
        let handles: Vec<_> = jobs
            .iter()
            .map(|job| {
                let (h, gate) = (&h, &gate);
                s.spawn(move || {
                    let cmd = h.command(job);
                    gate.wait();
                    h.run(cmd)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|t| t.join().expect("a client thread panicked"))
            .collect()
    });
    for (job, out) in jobs.iter().zip(&outs) {
        assert!(
            matches!(out.status.code(), Some(0 | 1)),
            "seed {seed}: {job:?}: {}\n{}",
            out.status,
            stderr(out)
        );
    }
    // Once the dust settles, what runs is exactly what is listed.
    h.wait_until("every unit to settle", WAIT, || {
        let list = h.json_list();
        let units = list.as_array().cloned().unwrap_or_default();
        let settled = units
            .iter()
            .all(|u| matches!(u["state"].as_str(), Some("running" | "inactive" | "failed")));
        let mut listed: Vec<i32> = units
            .iter()
            .filter_map(|u| u["pid"].as_i64().map(|p| p as i32))
            .collect();
        let mut running: Vec<i32> = children_of(daemon)
            .into_iter()
            .filter(|&(_, state)| state != 'Z')
            .map(|(pid, _)| pid)
            .collect();
        listed.sort_unstable();
        running.sort_unstable();
        settled && listed == running
    });
    healthy(&h, daemon, &["app", "web"]);
}
