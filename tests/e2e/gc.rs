//! `fabrik gc`: resources tagged for the project that the state does not know.

use crate::deploy::{World, text};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_orphans_of_a_deleted_state_are_found_and_only_they_are_collected() {
    let world = World::start().await;
    let spec = world.spec("app.yaml", |t| t);
    assert_eq!(world.apply(&spec, &[]).await.status.code(), Some(0));
    // Someone else's records, which gc must never report or touch: another project's
    // tag, a project whose name starts like this one's, and no tag at all.
    let cloudflare = &world.sandbox.cloudflare;
    cloudflare.insert_record(
        "other.example.com",
        "A",
        "203.0.113.9",
        "fabrik:other/test-api",
    );
    cloudflare.insert_record(
        "acme2.example.com",
        "A",
        "203.0.113.9",
        "fabrik:acme-2/test-api",
    );
    cloudflare.insert_record("plain.example.com", "A", "203.0.113.9", "");

    let clean = world.run(&["gc"]).await;
    let (stdout, stderr) = text(&clean);
    assert_eq!(clean.status.code(), Some(0), "{stderr}");
    assert!(stdout.is_empty(), "{stdout}");
    assert!(
        stderr.contains("no orphans") && stderr.contains("(2 checked)"),
        "{stderr}"
    );

    // The state is lost: what the apply created is now unknown to it.
    std::fs::remove_dir_all(world.dir.path().join(".fabrik")).expect("remove the state");
    let found = world.run(&["gc", "--output", "json"]).await;
    let (stdout, stderr) = text(&found);
    assert_eq!(found.status.code(), Some(0), "{stderr}");
    let orphans: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect();
    let mut kinds: Vec<&str> = orphans.iter().filter_map(|o| o["kind"].as_str()).collect();
    kinds.sort_unstable();
    assert_eq!(kinds, ["dns-record", "service"], "{stdout}");
    assert!(
        orphans.iter().all(|o| o["owner"] == "fabrik:acme/test-api"
            && o["app"] == "test-api"
            && o["status"] == "orphan"),
        "{stdout}"
    );

    // Deleting asks first; without a terminal it needs --yes and deletes nothing.
    let refused = world.run(&["gc", "--delete"]).await;
    assert_eq!(refused.status.code(), Some(2), "{:?}", text(&refused));
    assert_eq!(world.sandbox.coolify.resources().len(), 1);

    let collected = world.run(&["gc", "--delete", "--yes"]).await;
    let (_, stderr) = text(&collected);
    assert_eq!(collected.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("deleted coolify service test-api"),
        "{stderr}"
    );
    assert!(
        stderr.contains("deleted dns dns-record api.example.com"),
        "{stderr}"
    );
    assert!(world.sandbox.coolify.resources().is_empty());
    let mut left: Vec<String> = cloudflare
        .records()
        .iter()
        .filter_map(|r| r["name"].as_str().map(str::to_owned))
        .collect();
    left.sort_unstable();
    assert_eq!(
        left,
        [
            "acme2.example.com",
            "other.example.com",
            "plain.example.com"
        ],
        "only the orphans were deleted"
    );

    let after = world.run(&["gc"]).await;
    assert!(text(&after).1.contains("no orphans"), "{:?}", text(&after));
}

/// Issue 28, point 6: `gc` keeps at most `MAX_ORPHANS` orphans (without their documents),
/// says that it stopped, and lists the rest next time; it does not hold every listed
/// resource in memory (4 million took 2.2 GB).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gc_lists_a_bounded_number_of_orphans_and_says_so() {
    let world = World::start().await;
    let max = fabrik_engine::orchestrator::gc::MAX_ORPHANS;
    for i in 0..max + 5 {
        world.sandbox.cloudflare.insert_record(
            &format!("r{i}.example.com"),
            "A",
            "203.0.113.9",
            "fabrik:acme/test-api",
        );
    }
    let found = world.run(&["gc", "--output", "json"]).await;
    let (stdout, stderr) = text(&found);
    assert_eq!(found.status.code(), Some(0), "{stderr}");
    assert_eq!(stdout.lines().count(), max, "{stderr}");
    assert!(
        stderr.contains(&format!("more than {max} orphans")),
        "{stderr}"
    );
}
