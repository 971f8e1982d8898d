use super::*;

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("diakonos-persist-{}-{name}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn a_state_of_another_boot_starts_what_ran_afresh() {
    // Written before a reboot: what ran keeps only its name (started
    // again, no restart counted); what was stopping and what had ended
    // are as before; the same boot, or no boot recorded, is no reboot.
    let ran = |name: &str, stopping: bool| SavedService {
        name: name.into(),
        pid: Some(40),
        start_time: Some(7),
        restarts: 3,
        failures: 2,
        starts_ms: vec![1, 2],
        remain: true,
        restart_reason: Some("exited 1".into()),
        stopping,
        ..SavedService::default()
    };
    let mut state = SavedState {
        services: vec![ran("web", false), ran("old", true)],
        ended: vec![ran("failed", false)],
        boot: Some(SavedBoot {
            id: "aaaa".into(),
            started_ms: 5,
        }),
        ..SavedState::default()
    };
    assert!(!state.from_another_boot(Some("aaaa")));
    assert!(!state.from_another_boot(None));
    assert!(state.from_another_boot(Some("bbbb")));
    assert!(!SavedState::default().from_another_boot(Some("bbbb")));
    let ended = state.ended.clone();
    state.after_reboot();
    assert_eq!(
        state.services,
        vec![SavedService {
            name: "web".into(),
            ..SavedService::default()
        }]
    );
    assert_eq!(state.ended, ended);
}

#[test]
fn state_round_trips_atomically() {
    // What is saved loads back the same, and no temp file is left behind.
    let dir = scratch("roundtrip");
    let path = dir.join("state");
    let state = SavedState {
        version: STATE_VERSION,
        service_dir: Some(PathBuf::from("/srv/units")),
        services: vec![SavedService {
            name: "web".into(),
            pid: Some(12),
            start_time: Some(34),
            since_unix: Some(56),
            restarts: 2,
            remain: false,
            stopping: false,
            pgid: None,
            status_text: Some("serving".into()),
            probes: vec![crate::protocol::ProbeRecord {
                time: 1_795_938_301,
                duration_ms: 3,
                ok: true,
                output: "HTTP 200".into(),
            }],
            starting: Some(SavedStart {
                deadline_ms: Some(1_795_938_390_000),
            }),
            restart_at_ms: None,
            failures: 1,
            ..SavedService::default()
        }],
        timers: BTreeMap::from([(
            "backup".to_string(),
            SavedTimer {
                elapsed_ms: 1_795_929_466_000,
                last_run_ms: Some(1_795_929_466_123),
            },
        )]),
        ended: vec![SavedService {
            name: "job".to_string(),
            failed: Some("exited with code 3".into()),
            exit_code: Some(3),
            restarts: 2,
            since_unix: Some(1_795_938_300),
            ..SavedService::default()
        }],
        boot: Some(SavedBoot {
            id: "4b1c3f2e-0000-4000-8000-000000000001".into(),
            started_ms: 123_456,
        }),
        runs: vec![(
            "nightly".to_string(),
            SavedRun {
                armed_ms: Some(10),
                fired_ms: Some(3_600_000),
                boot_done: true,
                last_run_ms: Some(1_795_929_466_123),
            },
        )],
    };
    save_state(&path, &state).unwrap();
    sync(&path).unwrap();
    assert_eq!(load_state(&path), (state, None));
    assert!(!tmp_path(&path).exists());
    let _ = fs::remove_dir_all(dir);
}

#[test]
fn corrupt_state_is_moved_aside() {
    // A truncated state file is renamed away with a warning, and loading yields nothing.
    let dir = scratch("corrupt");
    let path = dir.join("state");
    fs::write(&path, b"{\"version\":1,\"serv").unwrap();
    let (state, warning) = load_state(&path);
    assert_eq!(state, SavedState::default());
    assert!(warning.unwrap().contains("moved it to"));
    assert!(!path.exists());
    let moved = fs::read_dir(&dir).unwrap().count();
    assert_eq!(moved, 1);
    let _ = fs::remove_dir_all(dir);
}

#[test]
fn one_bad_value_costs_only_the_record_it_is_in() {
    // A garbage boot record and one garbage service are left out; the other service, the ended units and the directory are kept, a copy of the file as it was is kept beside it, and the warning names what was left out.
    let dir = scratch("salvage");
    let path = dir.join("state");
    fs::write(
        &path,
        br#"{"version":1,"service_dir":"/srv/u","boot":"not a boot","services":[{"name":"a","pid":5,"start_time":7,"since_unix":9,"restarts":2},{"name":"b","pid":"six"}],"ended":[{"name":"c","pid":null,"start_time":null,"since_unix":9,"restarts":0,"failed":"exit code 3"},{"name":"d"}]}"#,
    )
    .unwrap();
    let (state, warning) = load_state(&path);
    let warning = warning.expect("a warning");
    assert!(
        warning.contains("`boot`")
            && warning.contains("1 of 2 services")
            && warning.contains("1 of 2 ended units"),
        "{warning}"
    );
    assert_eq!(state.boot, None);
    assert_eq!(state.service_dir, Some(PathBuf::from("/srv/u")));
    let names = |list: &[SavedService]| list.iter().map(|s| s.name.clone()).collect::<Vec<_>>();
    assert_eq!(names(&state.services), ["a"]);
    assert_eq!(state.services[0].restarts, 2);
    assert_eq!(names(&state.ended), ["c"]);
    assert!(path.exists(), "the file stays until the next write");
    assert_eq!(fs::read_dir(&dir).unwrap().count(), 2, "and a copy is kept");
    let _ = fs::remove_dir_all(dir);
}

#[test]
fn a_state_file_of_the_protocol_1_release_loads() {
    // The exact state file of diakonos 0.1 (protocol 1) loads in full: a protocol-1 daemon is handed over by SIGKILL and adoption from this file.
    let dir = scratch("v1");
    let path = dir.join("state");
    fs::write(
        &path,
        br#"{"version":1,"service_dir":"/tmp/u","services":[{"name":"a","pid":25679,"start_time":189281,"since_unix":1795929466,"restarts":0,"remain":false,"stopping":false,"pgid":null},{"name":"b","pid":25681,"start_time":189282,"since_unix":1795929466,"restarts":3,"remain":true,"stopping":false,"pgid":25681}]}"#,
    )
    .unwrap();
    let (state, warning) = load_state(&path);
    assert_eq!(warning, None);
    assert_eq!(state.service_dir, Some(PathBuf::from("/tmp/u")));
    assert!(state.timers.is_empty());
    let b = &state.services[1];
    assert_eq!(
        (
            b.name.as_str(),
            b.pid,
            b.start_time,
            b.restarts,
            b.remain,
            b.pgid
        ),
        ("b", Some(25681), Some(189282), 3, true, Some(25681))
    );
    // Fields added since default: no status text, no probes.
    assert_eq!((&b.status_text, b.probes.len()), (&None, 0));
    let _ = fs::remove_dir_all(dir);
}

#[test]
fn a_state_without_persistent_timers_is_written_as_before() {
    // No `timers` key unless a Persistent timer has a record: the previous release (which denies unknown fields) still reads the file.
    let state = SavedState {
        version: STATE_VERSION,
        ..SavedState::default()
    };
    let text = String::from_utf8(serde_json::to_vec(&state).unwrap()).unwrap();
    assert!(!text.contains("timers"), "{text}");
}

#[test]
fn a_service_without_status_or_probes_is_written_as_the_previous_release_wrote_it() {
    // The fields are left out while empty: the previous release (which denies unknown fields) reads the file after a downgrade.
    let state = SavedState {
        version: STATE_VERSION,
        services: vec![SavedService {
            name: "a".into(),
            pid: Some(5),
            start_time: Some(7),
            since_unix: Some(9),
            restarts: 0,
            remain: false,
            stopping: false,
            ..SavedService::default()
        }],
        ..SavedState::default()
    };
    let text = String::from_utf8(serde_json::to_vec(&state).unwrap()).unwrap();
    for later in [
        "status_text",
        "probes",
        "starting",
        "restart_at_ms",
        "failures",
        "watchdog_ms",
    ] {
        assert!(!text.contains(later), "{text}");
    }
}

#[test]
fn a_state_file_of_a_newer_release_loads_without_its_unknown_fields() {
    // Fields this build does not know, at every level, are ignored rather than moving the file aside.
    let dir = scratch("newer");
    let path = dir.join("state");
    fs::write(
        &path,
        br#"{"version":1,"services":[{"name":"a","pid":5,"start_time":7,"since_unix":9,"restarts":2,"later":[1]}],"timers":{"t":{"elapsed_ms":1,"later":true}},"later":{}}"#,
    )
    .unwrap();
    let (state, warning) = load_state(&path);
    assert_eq!(warning, None);
    assert_eq!(
        (state.services[0].restarts, state.timers["t"].elapsed_ms),
        (2, 1)
    );
    let _ = fs::remove_dir_all(dir);
}

#[test]
fn enabled_list_round_trips() {
    // Enabled names are saved one per line and read back as a set.
    let dir = scratch("enabled");
    let path = dir.join("enabled");
    let names: BTreeSet<String> = ["b".to_owned(), "a".to_owned()].into();
    save_enabled(&path, &names).unwrap();
    assert_eq!(load_enabled(&path), names);
    assert!(load_enabled(&dir.join("missing")).is_empty());
    let _ = fs::remove_dir_all(dir);
}
